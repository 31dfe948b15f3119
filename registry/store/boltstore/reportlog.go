package boltstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
)

// The report log makes heartbeat reports durable with one small sequential
// write and one fdatasync per group, instead of a bbolt commit that writes
// every B+tree page the group touched (with 200 installs reporting, one
// page or two per report, scattered over the file: tens of milliseconds
// per commit). The reports' effects are applied to an open bbolt write
// transaction at once and committed with it from time to time (a
// checkpoint); the log holds what was acknowledged since the last one and
// is replayed into bbolt when the store is opened after a crash.
//
// File layout: two header slots, then entries.
//
//	slot 0 at 0, slot 1 at headerSlotSize: magic(8) version(4) gen(8) crc32c(4)
//	entries from logStart: payload length(4) crc32c(gen(8) ‖ payload)(4) payload
//
// A store has two such files (LogSuffix and SpareLogSuffix): a checkpoint
// commits the generation of one while the next generation is written to
// the other. Starting a generation rewrites the header slot that does not
// hold the file's current header, so a torn header write leaves the older,
// still valid one. An entry's checksum covers the generation, so entries of
// an earlier generation left further on in the file (the space is reused,
// never truncated) end the log just like the zeros of space not written
// yet, or a torn last write. A file with zeros in both header slots and
// where its first entry goes never had a generation started: it holds
// nothing that was acknowledged.
const (
	headerSlotSize = 512
	logStart       = 2 * headerSlotSize
	logVersion     = 1
	entryHeader    = 8
	// maxEntryPayload bounds one entry (one AppendReports call); a length
	// above it is damage, not a large batch.
	maxEntryPayload = 64 << 20
	// logGrowth is how much zero-filled space the log adds when it runs out:
	// overwriting allocated blocks lets fdatasync skip the inode (size)
	// update an append needs.
	logGrowth = 4 << 20
)

var logMagic = [8]byte{'S', 'W', 'B', 'D', 'R', 'L', 'O', 'G'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// logFile is what the log needs of its file (tests put failures in).
type logFile interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	Fd() uintptr
}

// reportLog is the open log file. Only the store's committer uses it.
type reportLog struct {
	f     logFile
	path  string
	gen   uint64 // generation entries are written under
	slot  int64  // header slot naming gen; the other one is written next
	end   int64  // where the next entry goes
	alloc int64  // file size: zero-filled or written up to here
}

// openReportLog opens (creating if needed) the log at path and returns it
// with the payloads of the entries of its current generation, in order. A
// missing or empty file is a log of generation 0 with nothing in it.
func openReportLog(path string) (*reportLog, uint64, [][]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("open report log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, nil, fmt.Errorf("open report log %s: %w", path, err)
	}
	l := &reportLog{f: f, path: path, end: logStart, alloc: fi.Size(), slot: 1}
	if fi.Size() == 0 {
		return l, 0, nil, nil
	}
	gen, slot, payloads, err := readReportLog(f, fi.Size())
	if err != nil {
		_ = f.Close()
		return nil, 0, nil, fmt.Errorf("report log %s: %w", path, err)
	}
	l.gen, l.slot = gen, slot
	return l, gen, payloads, nil
}

// readReportLog parses a log file: the newest valid header (its
// generation and slot), then entries of its generation until the first
// that does not check out (the end). Only a file whose headers are both
// damaged is an error: then nothing says which entries are current.
func readReportLog(r io.ReaderAt, size int64) (gen uint64, slot int64, payloads [][]byte, err error) {
	var header [headerSlotSize]byte
	found, blank := false, true
	for i := int64(0); i < 2; i++ {
		n, _ := r.ReadAt(header[:], i*headerSlotSize)
		g, ok := parseLogHeader(header[:n])
		if ok && (!found || g > gen) {
			gen, slot, found = g, i, true
		}
		blank = blank && !slices.ContainsFunc(header[:n], func(b byte) bool { return b != 0 })
	}
	if !found && blank {
		// Zeros where the first entry goes as well: no generation was ever
		// started in this file, so it holds nothing that was acknowledged.
		var first [entryHeader]byte
		n, _ := r.ReadAt(first[:], logStart)
		if first == [entryHeader]byte{} || n < entryHeader {
			return 0, 1, nil, nil
		}
	}
	if !found {
		return 0, 0, nil, errors.New("both headers are damaged, so the reports it holds cannot be told from old ones: " +
			"restore the data directory from a backup, or move the log aside to open the store without the reports acknowledged since its last checkpoint")
	}
	if size <= logStart {
		return gen, slot, nil, nil
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r, logStart, size-logStart), 1<<16)
	var head [entryHeader]byte
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return gen, slot, payloads, nil
		}
		size := binary.BigEndian.Uint32(head[0:4])
		if size == 0 || size > maxEntryPayload {
			return gen, slot, payloads, nil
		}
		payload := make([]byte, size)
		if _, err := io.ReadFull(br, payload); err != nil {
			return gen, slot, payloads, nil
		}
		if entryChecksum(gen, payload) != binary.BigEndian.Uint32(head[4:8]) {
			return gen, slot, payloads, nil
		}
		payloads = append(payloads, payload)
	}
}

func parseLogHeader(b []byte) (uint64, bool) {
	if len(b) < 24 || [8]byte(b[0:8]) != logMagic || binary.BigEndian.Uint32(b[8:12]) != logVersion {
		return 0, false
	}
	if crc32.Checksum(b[0:20], castagnoli) != binary.BigEndian.Uint32(b[20:24]) {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[12:20]), true
}

func entryChecksum(gen uint64, payload []byte) uint32 {
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], gen)
	return crc32.Update(crc32.Checksum(g[:], castagnoli), castagnoli, payload)
}

// beginEntry appends the header of an entry to dst; finishEntry fills it
// in once the payload has been appended after it.
func beginEntry(dst []byte) ([]byte, int) {
	return append(dst, make([]byte, entryHeader)...), len(dst)
}

func finishEntry(dst []byte, start int, gen uint64) []byte {
	payload := dst[start+entryHeader:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], entryChecksum(gen, payload))
	return dst
}

// append writes entries (built with beginEntry/finishEntry under l.gen)
// after the last one and makes them durable.
func (l *reportLog) append(entries []byte) error {
	if len(entries) == 0 {
		return nil
	}
	need := l.end + int64(len(entries))
	if need > l.alloc {
		grown := max(need, l.alloc) + logGrowth
		if err := l.zeroFill(grown); err != nil {
			return err
		}
	}
	if _, err := l.f.WriteAt(entries, l.end); err != nil {
		return fmt.Errorf("write report log %s: %w", l.path, err)
	}
	if err := fdatasync(l.f); err != nil {
		return fmt.Errorf("sync report log %s: %w", l.path, err)
	}
	l.end = need
	return nil
}

// zeroFill extends the file with zeros up to size.
func (l *reportLog) zeroFill(size int64) error {
	zeros := make([]byte, 1<<20)
	for off := l.alloc; off < size; {
		n := min(int64(len(zeros)), size-off)
		if _, err := l.f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("extend report log %s: %w", l.path, err)
		}
		off += n
	}
	l.alloc = size
	return nil
}

// reset starts generation gen: it makes the header slot that does not hold
// the current header name it, durably, so that every entry written before
// no longer counts.
func (l *reportLog) reset(gen uint64) error {
	var slot [headerSlotSize]byte
	copy(slot[0:8], logMagic[:])
	binary.BigEndian.PutUint32(slot[8:12], logVersion)
	binary.BigEndian.PutUint64(slot[12:20], gen)
	binary.BigEndian.PutUint32(slot[20:24], crc32.Checksum(slot[0:20], castagnoli))
	if l.alloc < logStart {
		if err := l.zeroFill(logStart + logGrowth); err != nil {
			return err
		}
	}
	next := 1 - l.slot
	if _, err := l.f.WriteAt(slot[:], next*headerSlotSize); err != nil {
		return fmt.Errorf("write report log header %s: %w", l.path, err)
	}
	if err := fdatasync(l.f); err != nil {
		return fmt.Errorf("sync report log header %s: %w", l.path, err)
	}
	l.gen, l.slot, l.end = gen, next, logStart
	return nil
}

// current reads back the entries written under the current generation.
func (l *reportLog) current() ([][]byte, error) {
	gen, _, payloads, err := readReportLog(l.f, l.end)
	if err == nil && gen != l.gen {
		err = fmt.Errorf("its header names generation %d, not %d", gen, l.gen)
	}
	if err != nil {
		return nil, fmt.Errorf("read report log %s: %w", l.path, err)
	}
	return payloads, nil
}

// size is how many bytes of entries the current generation holds.
func (l *reportLog) size() int64 { return l.end - logStart }

func (l *reportLog) close() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close report log %s: %w", l.path, err)
	}
	return nil
}
