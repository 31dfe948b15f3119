package boltstore

import "syscall"

// fdatasync flushes f's data (and the metadata needed to read it back),
// like bbolt does on Linux.
func fdatasync(f interface{ Fd() uintptr }) error { return syscall.Fdatasync(int(f.Fd())) }
