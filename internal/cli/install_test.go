package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegistryFromLink(t *testing.T) {
	for link, want := range map[string]string{
		"https://reg.example.com/download?ref=K7QM4XJDR": "https://reg.example.com",
		"http://127.0.0.1:8420/r/K7QM4XJDR":              "http://127.0.0.1:8420",
		"K7QM4XJDR":                                      "",
		"ftp://x/download?ref=1":                         "",
	} {
		if got := registryFromLink(link); got != want {
			t.Errorf("registryFromLink(%q) = %q, want %q", link, got, want)
		}
	}
}

func TestInstallCommandDryRunAndBadInput(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWITCHBOARD_PARTNER_CODE", "")
	t.Setenv("SWITCHBOARD_INSTALLER_NAME", "")
	var out, errOut bytes.Buffer
	code := Execute([]string{"install", "--root", root, "--registry", "http://127.0.0.1:9", "--dry-run", "--yes", "--output", "json"},
		strings.NewReader(""), &out, &errOut)
	if code != ExitOK {
		t.Fatalf("dry run: exit %d: %s", code, errOut.String())
	}
	var rep struct {
		DryRun      bool `json:"dry_run"`
		PartnerCode struct {
			Source string `json:"source"`
		} `json:"partner_code"`
		Steps []struct{ Status string } `json:"steps"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.DryRun || rep.PartnerCode.Source != "none" || len(rep.Steps) == 0 {
		t.Fatalf("dry run output %s: %v", out.String(), err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("dry run changed the root: %v", entries)
	}

	// A mistyped code from the environment is refused with partnercode's message.
	t.Setenv("SWITCHBOARD_PARTNER_CODE", "K7QM-4XJD-Q")
	out.Reset()
	errOut.Reset()
	code = Execute([]string{"install", "--root", root, "--registry", "http://127.0.0.1:9", "--dry-run", "--yes"}, strings.NewReader(""), &out, &errOut)
	if code != ExitFailed || !strings.Contains(errOut.String(), "SWITCHBOARD_PARTNER_CODE") {
		t.Errorf("bad env code: exit %d: %s", code, errOut.String())
	}

	// No registry anywhere: exit 1 with what to do.
	t.Setenv("SWITCHBOARD_PARTNER_CODE", "")
	errOut.Reset()
	code = Execute([]string{"install", "--root", root, "--yes", "--dry-run"}, strings.NewReader(""), &out, &errOut)
	if code != ExitFailed || !strings.Contains(errOut.String(), "--registry") {
		t.Errorf("no registry: exit %d: %s", code, errOut.String())
	}
}
