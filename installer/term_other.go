//go:build !linux

package installer

import (
	"errors"
	"os"
)

// The installer targets Linux servers; elsewhere the prompt reads whole
// lines and checks the code on Enter.

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func rawMode(*os.File) (func(), error) {
	return nil, errors.New("raw terminal mode is only implemented on Linux")
}
