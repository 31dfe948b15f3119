package agentbench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseCPU(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	stat := "4242 (a b) c) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 130 0 0 20 0 9 0 100 1000 2000\n"
	got, err := parseCPU(stat)
	if err != nil || got != 3800*time.Millisecond {
		t.Fatalf("got %v %v, want 3.8s", got, err)
	}
	if _, err := parseCPU("4242 (x) S 1 2"); err == nil {
		t.Fatal("short line accepted")
	}
	if _, err := parseCPU("no paren"); err == nil {
		t.Fatal("line without a name accepted")
	}
}

func TestParseSmapsRollup(t *testing.T) {
	s := "55d0-7ffd ---p 00000000 00:00 0   [rollup]\nRss:   30952 kB\nPss:   15156 kB\nPss_Anon:  9772 kB\nAnonymous:  9772 kB\nSwap: 0 kB\n"
	m, err := parseSmapsRollup(s)
	if err != nil || m.RSS != 30952*1024 || m.PSS != 15156*1024 || m.Anon != 9772*1024 {
		t.Fatalf("got %+v %v", m, err)
	}
	if _, err := parseSmapsRollup("Rss: 1 kB\n"); err == nil {
		t.Fatal("missing Pss accepted")
	}
	if _, err := parseSmapsRollup("Rss: 1 MB\nPss: 1 kB\nAnonymous: 1 kB\n"); err == nil || !strings.Contains(err.Error(), "unexpected") {
		t.Fatalf("bad unit: %v", err)
	}
}

// TestReadSelf reads this test process's own figures from /proc.
func TestReadSelf(t *testing.T) {
	m, err := ReadMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.PSS <= 0 || m.PSS > m.RSS || m.Anon <= 0 {
		t.Fatalf("own memory %+v", m)
	}
	c0, err := ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for x, deadline := 0, time.Now().Add(2*time.Second); ; x++ { // burn at least one clock tick
		if c, _ := ReadCPU(os.Getpid()); c > c0 || time.Now().After(deadline) {
			if c <= c0 {
				t.Fatalf("CPU time did not move: %v", c)
			}
			break
		}
	}
	if _, err := ReadMem(1 << 30); err == nil {
		t.Fatal("no error for a pid that does not exist")
	}
}

func TestResultLines(t *testing.T) {
	r := IdleResult{Duration: 10 * time.Second, CPU: 50 * time.Millisecond, Total: Mem{PSS: 38 << 20, RSS: 80 << 20, Anon: 18 << 20},
		MaxPSS: 39 << 20, Procs: []ProcFigure{{Name: "agent", Mem: Mem{PSS: 13 << 20}}}}
	if got := r.String(); !strings.Contains(got, "pss_total_mb=38.0") || !strings.Contains(got, "cpu_pct=0.50") || !strings.Contains(got, "agent_pss_mb=13.0") {
		t.Fatalf("idle line %q", got)
	}
	d := DrainResult{Reports: 100_000, Elapsed: 8 * time.Second, Stored: 100_002}
	if got := d.String(); !strings.Contains(got, "reports_per_s=12500") || !strings.Contains(got, "batch=default") {
		t.Fatalf("drain line %q", got)
	}
}
