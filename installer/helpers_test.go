package installer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/partnercode"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// copyRoot copies testdata/roots/name into a temporary directory.
func copyRoot(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("testdata", "roots", name)
	dst := filepath.Join(t.TempDir(), "root")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// entry is one path of a snapshot.
type entry struct {
	mode fs.FileMode
	data string
}

// snapshot records every path under root with its type, mode and content.
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := entry{mode: fi.Mode()}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.data = string(data)
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails the test with every difference between two snapshots.
func sameTree(t *testing.T, what string, want, got map[string]entry) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			diffs = append(diffs, "missing: "+p)
		case g.mode != w.mode:
			diffs = append(diffs, fmt.Sprintf("mode of %s: %v, want %v", p, g.mode, w.mode))
		case g.data != w.data:
			diffs = append(diffs, "content of "+p+" differs")
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "extra: "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%s: the tree differs:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

// fakeExe is a small stand-in for the switchboard binary.
func fakeExe(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "switchboard")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho switchboard stand-in\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeRegistry answers activations and /v1/keys the way registry/api
// describes them, with real signed licences. The end-to-end test runs the
// real registry; this one lets the unit tests see every request.
type fakeRegistry struct {
	srv  *httptest.Server
	key  licensing.SigningKey
	mu   sync.Mutex
	ids  map[string]string // public key → install id
	deac []string          // install ids deactivated
	// known partner codes (canonical) and their names
	partners map[string]string
	n        int
	// interval is the heartbeat_interval_seconds answered (default 3600).
	interval int
}

func newFakeRegistry(t *testing.T, partners ...string) *fakeRegistry {
	t.Helper()
	key, err := licensing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRegistry{key: key, ids: map[string]string{}, partners: map[string]string{}, interval: 3600}
	for _, p := range partners {
		f.partners[partnercode.MustParse(p).String()] = "Partner " + p
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathActivations, f.activate)
	mux.HandleFunc("GET "+api.PathKeys, f.keys)
	mux.HandleFunc("POST /v1/installs/{id}/deactivate", f.deactivate)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: code, Message: msg}})
}

func (f *fakeRegistry) activate(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sig, err := api.ParseSignature(r.Header.Get(api.SignatureHeader))
	if err != nil || sig.Verify(r.Method, r.URL.Path, body, sig.PublicKey, time.Now()) != nil {
		f.fail(w, 401, api.CodeBadSignature, "bad signature")
		return
	}
	var req api.ActivationRequest
	if err := json.Unmarshal(body, &req); err != nil || !bytes.Equal(req.PublicKey, sig.PublicKey) {
		f.fail(w, 400, api.CodeMalformed, "bad body")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var partner *api.PartnerRef
	if req.PartnerCode != "" {
		name, ok := f.partners[req.PartnerCode]
		if !ok {
			f.fail(w, 422, api.CodeUnknownPartnerCode, "partner code "+req.PartnerCode+" is not known to this registry")
			return
		}
		partner = &api.PartnerRef{Code: req.PartnerCode, Tier: "partner", Name: name}
	}
	status := http.StatusOK
	id, ok := f.ids[string(req.PublicKey)]
	if !ok {
		f.n++
		id = fmt.Sprintf("inst_%04d", f.n)
		f.ids[string(req.PublicKey)] = id
		status = http.StatusCreated
	}
	l := licensing.Licence{InstallID: id, Tier: licensing.TierNone, NotAfter: time.Now().Add(365 * 24 * time.Hour), Grace: 30 * 24 * time.Hour}
	if partner != nil {
		l.PartnerCode, l.Tier = partner.Code, licensing.TierPartner
	}
	lic, err := licensing.Issue(l, f.key)
	if err != nil {
		f.fail(w, 500, api.CodeInternal, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.ActivationResponse{InstallID: id, Licence: string(lic), HeartbeatIntervalSeconds: f.interval, Partner: partner})
}

func (f *fakeRegistry) keys(w http.ResponseWriter, _ *http.Request) {
	pub := f.key.Public()
	pemBytes, _ := licensing.MarshalPublicKey(pub)
	_ = json.NewEncoder(w).Encode(api.KeysResponse{Keys: []api.VendorKey{{ID: pub.ID, PublicKey: pub.Key, PEM: string(pemBytes), Current: true}}})
}

func (f *fakeRegistry) deactivate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	f.deac = append(f.deac, id)
	f.mu.Unlock()
	_ = json.NewEncoder(w).Encode(api.DeactivateResponse{InstallID: id, State: "deactivated", DeactivatedAt: time.Now()})
}

func (f *fakeRegistry) deactivated() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.deac...)
}

// unreachableURL is a loopback URL nothing listens on.
func unreachableURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// fakeRunner records host commands and answers them from a table.
type fakeRunner struct {
	mu   sync.Mutex
	ran  []string
	fail map[string]error // command line → error
	// active makes `systemctl is-enabled/is-active` succeed (the unit is
	// enabled and running); otherwise they fail like for a new unit.
	active bool
}

func (r *fakeRunner) LookPath(name string) (string, error) { return "/usr/bin/" + name, nil }

func (r *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, line)
	if err, ok := r.fail[line]; ok {
		return nil, err
	}
	if !r.active && (strings.Contains(line, " is-enabled ") || strings.Contains(line, " is-active ")) {
		return nil, fmt.Errorf("%s: exit status 1", line)
	}
	if strings.HasSuffix(line, " -V") {
		return []byte("Asterisk 20.5.2\n"), nil
	}
	return nil, nil
}

func (r *fakeRunner) commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ran...)
}

// testCode returns a fresh valid partner code.
func testCode(t *testing.T) partnercode.Code {
	t.Helper()
	c, err := partnercode.New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func installOpts(t *testing.T, root, registryURL string) Options {
	return Options{Root: root, RegistryURL: registryURL, Code: CodeChoice{Source: SourceNone}, Executable: fakeExe(t)}
}

func mustInstall(t *testing.T, opts Options) *Report {
	t.Helper()
	in, err := Prepare(context.Background(), opts)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	if err := in.Execute(context.Background()); err != nil {
		t.Fatalf("install: %v", err)
	}
	return in.Report
}
