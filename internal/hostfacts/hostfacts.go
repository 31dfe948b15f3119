// Package hostfacts reads the host facts an install reports to the
// registry (system name from os-release, hostname, machine id) and cleans
// them to what the registry accepts. The installer and the agent both use
// it, so an activation sent by either describes the host the same way.
//
// Every file read here may have been edited by anyone with root on the
// customer's server: reads are bounded, only regular files are read, and
// every value goes through Clean.
package hostfacts

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// MaxLen is what the registry accepts for one fact (checkString in
// registry/decode.go).
const MaxLen = 256

// maxOSReleaseBytes bounds the os-release file read; real ones are < 1 KiB.
const maxOSReleaseBytes = 64 << 10

// Clean makes s acceptable to the registry as a fact: valid UTF-8 without
// control characters (each becomes a space), trimmed, at most MaxLen bytes
// (cut at a rune boundary).
func Clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	for len(s) > MaxLen {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.TrimSpace(s)
}

// ParseOSRelease returns the system's name from os-release(5) text:
// PRETTY_NAME, else NAME and VERSION. Values follow shell quoting: "…"
// with backslash escapes, '…' taken literally, or a bare word. The result
// is not cleaned: pass it through Clean before sending it anywhere.
func ParseOSRelease(data []byte) string {
	vals := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vals[k] = unquote(v)
	}
	if v := vals["PRETTY_NAME"]; v != "" {
		return v
	}
	return strings.TrimSpace(vals["NAME"] + " " + vals["VERSION"])
}

// unquote undoes os-release(5) shell quoting of one value.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		var b strings.Builder
		in := v[1 : len(v)-1]
		for i := 0; i < len(in); i++ {
			if in[i] == '\\' && i+1 < len(in) && strings.IndexByte("\"\\`$", in[i+1]) >= 0 {
				i++
			}
			b.WriteByte(in[i])
		}
		return b.String()
	}
	return v
}

// OSRelease returns the cleaned system name of the system under root
// ("/" for this one) from etc/os-release, or usr/lib/os-release where
// etc/os-release is missing, as os-release(5) says. It is "" when neither
// names the system.
func OSRelease(root string) string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, err := readRegular(filepath.Join(root, p), maxOSReleaseBytes)
		if err != nil {
			continue
		}
		return Clean(ParseOSRelease(data))
	}
	return ""
}

// Hostname returns the cleaned first line of etc/hostname under root, or
// "" when there is none. For the running system use LiveHostname.
func Hostname(root string) string {
	return firstLine(filepath.Join(root, "/etc/hostname"), 512)
}

// LiveHostname returns the running system's cleaned hostname, from the
// kernel, else from /etc/hostname.
func LiveHostname() string {
	if h, err := os.Hostname(); err == nil {
		if h = Clean(h); h != "" {
			return h
		}
	}
	return Hostname("/")
}

// MachineID returns the cleaned first line of etc/machine-id under root,
// or "" when there is none. It is informative only: servers get cloned.
func MachineID(root string) string {
	return firstLine(filepath.Join(root, "/etc/machine-id"), 128)
}

// firstLine returns the cleaned first non-empty line of path's first max
// bytes.
func firstLine(path string, max int64) string {
	data, err := readRegular(path, max)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line = Clean(line); line != "" {
			return line
		}
	}
	return ""
}

// readRegular reads at most max bytes of path, which must be a regular
// file (after symlinks): a FIFO or device planted there must not block
// or flood the reader.
func readRegular(path string, max int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) == 0 {
		return nil, errors.New(path + " is empty")
	}
	return data, nil
}
