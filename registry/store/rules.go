package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
)

// The rules below are the part of report ingest that does not depend on the
// storage engine. Every engine calls them inside its transaction so a
// PostgreSQL engine flags clones and tracks liveness exactly like bbolt.

// ApplyReport folds a newly stored report, received at `at` (registry
// clock), into the install's latest state. It returns a non-empty reason
// when the report shows the install is cloned: its host facts went back to
// a machine it had moved away from, which one machine alone does not do.
//
// The install takes r's Seats map and Plugins slice as they are, not
// copies (a batch of 100 would copy them 100 times): a decoded report is
// never changed, and installs replace these fields, never change them.
func ApplyReport(in *Install, r api.Report, at time.Time) (cloneReason string) {
	if in.FirstSeen.IsZero() {
		in.FirstSeen = at
	}
	if at.After(in.LastSeen) {
		in.LastSeen = at
	}
	in.ReportCount++
	newest := r.Seq >= in.MaxSeq
	if newest {
		in.MaxSeq = r.Seq
		if !r.At.IsZero() {
			in.LastReportAt = r.At.UTC()
		}
		if r.Facts != nil {
			in.Facts = *r.Facts
		}
		if r.Seats != nil {
			in.Seats = r.Seats
		}
		if r.Plugins != nil {
			in.Plugins = r.Plugins
		}
		if r.LicenceState != "" {
			in.LicenceState = r.LicenceState
		}
	}
	if r.Facts == nil || (r.Facts.MachineID == "" && r.Facts.Hostname == "") {
		return ""
	}
	return noteHost(in, *r.Facts, at)
}

// noteHost keeps in.Hosts ordered by last use, most recent last. Moving to a
// new machine (restore onto new hardware) is normal; going back to a
// machine it had left means two machines report under one key.
func noteHost(in *Install, f api.Facts, at time.Time) string {
	i := slices.IndexFunc(in.Hosts, func(h Host) bool { return h.Same(f) })
	last := len(in.Hosts) - 1
	switch {
	case i == last && i >= 0:
		in.Hosts[i].LastSeen = at
		return ""
	case i < 0:
		in.Hosts = append(in.Hosts, Host{MachineID: f.MachineID, Hostname: f.Hostname, FirstSeen: at, LastSeen: at})
		if len(in.Hosts) > MaxHosts {
			in.Hosts = slices.Delete(in.Hosts, 0, len(in.Hosts)-MaxHosts)
		}
		return ""
	default:
		prev := in.Hosts[last]
		h := in.Hosts[i]
		h.LastSeen = at
		in.Hosts = append(slices.Delete(in.Hosts, i, i+1), h)
		return fmt.Sprintf("reports alternate between two hosts (%s and %s): the server was probably cloned with its install key",
			hostName(prev), hostName(h))
	}
}

func hostName(h Host) string {
	switch {
	case h.Hostname != "" && h.MachineID != "":
		return h.Hostname + "/" + h.MachineID
	case h.Hostname != "":
		return h.Hostname
	default:
		return h.MachineID
	}
}

// FlagClone marks the install cloned (first reason wins) and says whether
// it was newly flagged.
func FlagClone(in *Install, reason string, at time.Time) bool {
	if in.Cloned {
		return false
	}
	in.Cloned = true
	in.CloneReason = reason
	in.ClonedAt = at
	return true
}

// SameReport reports whether two encodings of a report with the same seq
// carry the same content. Byte equality is the fast path; otherwise both are
// decoded and compared field by field, so a re-encoded retry (other key
// order, other time zone) is still a duplicate and not a clone.
func SameReport(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ra, rb api.Report
	if json.Unmarshal(a, &ra) != nil || json.Unmarshal(b, &rb) != nil {
		return false
	}
	ra.At, rb.At = ra.At.UTC(), rb.At.UTC()
	if ra.Summary != nil && rb.Summary != nil {
		ra.Summary.FirstAt, ra.Summary.LastAt = ra.Summary.FirstAt.UTC(), ra.Summary.LastAt.UTC()
		rb.Summary.FirstAt, rb.Summary.LastAt = rb.Summary.FirstAt.UTC(), rb.Summary.LastAt.UTC()
	}
	ea, errA := json.Marshal(ra)
	eb, errB := json.Marshal(rb)
	return errA == nil && errB == nil && bytes.Equal(ea, eb)
}

// ConflictReason is the clone reason for a sequence number reused with
// different content.
func ConflictReason(seq uint64) string {
	return fmt.Sprintf("sequence number %d was sent twice with different content: two machines report under this install key", seq)
}

// LastActivity is the time liveness is measured from: the latest report,
// or the activation when the install has not reported yet.
func (in Install) LastActivity() time.Time {
	if in.LastSeen.After(in.ActivatedAt) {
		return in.LastSeen
	}
	return in.ActivatedAt
}
