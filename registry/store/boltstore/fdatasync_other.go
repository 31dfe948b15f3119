//go:build !linux

package boltstore

import "errors"

// fdatasync flushes f; where there is no fdatasync, with fsync.
func fdatasync(f interface{ Fd() uintptr }) error {
	if s, ok := f.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return errors.ErrUnsupported
}
