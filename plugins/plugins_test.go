package plugins

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

func TestValidateFacts(t *testing.T) {
	good := Facts{Product: "asterisk", Version: "20.5.0", Details: map[string]string{"uptime": "3 days\nok"},
		Seats: map[string]int64{SeatPBXEndpoints: 12}}
	if err := ValidateFacts(good); err != nil {
		t.Fatalf("good facts refused: %v", err)
	}
	cases := []struct {
		name string
		f    Facts
		want string
	}{
		{"empty product", Facts{}, "product is empty"},
		{"negative seats", Facts{Product: "x", Seats: map[string]int64{"odoo_users": -1}}, "negative"},
		{"absurd seats", Facts{Product: "x", Seats: map[string]int64{"odoo_users": MaxSeatCount + 1}}, "above the limit"},
		{"bad seat name", Facts{Product: "x", Seats: map[string]int64{"Odoo Users": 1}}, "seat name"},
		{"invalid utf8", Facts{Product: "x", Version: "1\xff"}, "not valid UTF-8"},
		{"control char", Facts{Product: "x\x1b[31m"}, "control character"},
		{"long version", Facts{Product: "x", Version: strings.Repeat("9", MaxShortLen+1)}, "bytes long"},
		{"long detail", Facts{Product: "x", Details: map[string]string{"k": strings.Repeat("a", MaxTextLen+1)}}, "bytes long"},
		{"empty detail key", Facts{Product: "x", Details: map[string]string{"": "v"}}, "empty key"},
		{"too many details", Facts{Product: "x", Details: manyDetails(MaxDetails + 1)}, "entries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateFacts(c.f)
			if !errors.Is(err, ErrInvalidAnswer) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrInvalidAnswer containing %q", err, c.want)
			}
		})
	}
}

func manyDetails(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[strings.Repeat("k", i+1)] = "v"
	}
	return m
}

func TestValidateHealthAndReceipt(t *testing.T) {
	now := time.Now()
	if err := ValidateHealth(Health{Healthy: true, State: "connected", Since: now}, now); err != nil {
		t.Fatal(err)
	}
	if err := ValidateHealth(Health{State: "ok", Since: now.Add(time.Hour)}, now); !errors.Is(err, ErrInvalidAnswer) {
		t.Fatalf("future since accepted: %v", err)
	}
	if err := ValidateReceipt(Receipt{RemoteID: "42", URL: "https://odoo.example/web#id=42"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"javascript:alert(1)", "https://x/" + strings.Repeat("a", MaxURLLen), "http://a b\x00"} {
		if err := ValidateReceipt(Receipt{URL: u}); !errors.Is(err, ErrInvalidAnswer) {
			t.Errorf("url %.40q accepted: %v", u, err)
		}
	}
}

func TestProtocolErrorSaysWhatToInstall(t *testing.T) {
	// The text go-plugin v1.8.0 produces when negotiation fails.
	raw := errors.New("incompatible API version with plugin. Plugin version: 0, Client versions: [1]")
	err := AsProtocolError("asterisk", raw)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Speaks != 0 || pe.Needs != ProtocolVersion {
		t.Fatalf("not recognised: %#v", err)
	}
	msg := err.Error()
	for _, want := range []string{`"asterisk"`, "protocol 0", "needs protocol 1", "install switchboard-plugin-asterisk built for protocol 1", "switchboard ≥ " + FirstReleaseForProtocol} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	newer := AsProtocolError("odoo", errors.New("incompatible API version with plugin. Plugin version: 2, Client versions: [1]"))
	if !strings.Contains(newer.Error(), "upgrade switchboard") {
		t.Errorf("newer plugin message lacks the upgrade hint: %v", newer)
	}
	other := errors.New("plugin exited before we could connect")
	if AsProtocolError("x", other) != other {
		t.Error("unrelated error was rewritten")
	}
}

func TestSanitizeMessage(t *testing.T) {
	got := SanitizeMessage("bad\xff\x1b[2Jthing\n" + strings.Repeat("x", 2000))
	if !utf8.ValidString(got) || strings.ContainsAny(got, "\x1b\n") || len(got) > 1100 {
		t.Fatalf("not sanitised: %q", got)
	}
}

// hostile is an Integration that answers whatever the test sets.
type hostile struct {
	facts  Facts
	health Health
	panic  bool
	hang   bool
}

func (h *hostile) Configure(context.Context, map[string]string) error { return nil }
func (h *hostile) Describe(ctx context.Context) (Facts, error) {
	if h.panic {
		panic("adapter bug")
	}
	if h.hang {
		time.Sleep(2 * time.Second) // ignores ctx, like a stuck plugin
	}
	return h.facts, nil
}
func (h *hostile) Health(context.Context) (Health, error) { return h.health, nil }
func (h *hostile) ApplyPartnerLink(context.Context, string, string) (LinkResult, error) {
	return LinkResult{}, errors.New("no such parameter: fix ir.config_parameter access")
}

// serveUnix serves impl over a unix socket with plain gRPC and returns a
// host-side client that uses the host's dial options.
func serveUnix(t *testing.T, impl Integration) *IntegrationClient {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "p.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	RegisterIntegrationServer(srv, impl)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("unix://"+sock, append(DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return NewIntegrationClient(conn)
}

func TestClientRejectsHostileAnswers(t *testing.T) {
	impl := &hostile{}
	c := serveUnix(t, impl)
	ctx := context.Background()

	impl.facts = Facts{Product: "asterisk", Seats: map[string]int64{SeatPBXEndpoints: 3}}
	f, err := c.Describe(ctx)
	if err != nil || f.Seats[SeatPBXEndpoints] != 3 {
		t.Fatalf("good answer: %+v, %v", f, err)
	}

	impl.facts = Facts{Product: "asterisk", Seats: map[string]int64{SeatPBXEndpoints: -3}}
	if _, err := c.Describe(ctx); !errors.Is(err, ErrInvalidAnswer) {
		t.Fatalf("negative seats: %v", err)
	}

	impl.facts = Facts{Product: "asterisk", Details: map[string]string{"blob": strings.Repeat("a", MaxMessageBytes+1)}}
	if _, err := c.Describe(ctx); !errors.Is(err, ErrInvalidAnswer) {
		t.Fatalf("oversized answer: %v", err)
	}

	impl.health = Health{State: "ok\x1b[2J"}
	if _, err := c.Health(ctx); !errors.Is(err, ErrInvalidAnswer) {
		t.Fatalf("control characters in health: %v", err)
	}
	// A Go plugin cannot even send invalid UTF-8 (marshalling fails on its
	// side); whatever the path, the host gets an error, never the string.
	impl.health = Health{State: "ok\xff"}
	if h, err := c.Health(ctx); err == nil {
		t.Fatalf("invalid UTF-8 health accepted: %+v", h)
	}

	_, err = c.ApplyPartnerLink(ctx, "ABCD", "partner")
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "fix ir.config_parameter") {
		t.Fatalf("plugin error not passed on: %v", err)
	}

	impl.panic = true
	_, err = c.Describe(ctx)
	if !errors.As(err, &re) || re.Code != codes.Internal || !strings.Contains(re.Message, "panicked") {
		t.Fatalf("panic not turned into an error: %v", err)
	}
	impl.panic = false

	impl.hang = true
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Describe(cctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung call: %v", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("a hung plugin held the caller %s past a 100ms deadline", waited)
	}
}

func FuzzValidateFacts(f *testing.F) {
	f.Add("asterisk", "20.1", "k", "v", "pbx_endpoints", int64(3))
	f.Add("", "\xff", "", "\x00", "Bad Key", int64(-1))
	f.Fuzz(func(t *testing.T, product, version, dk, dv, sk string, n int64) {
		facts := Facts{Product: product, Version: version, Details: map[string]string{dk: dv}, Seats: map[string]int64{sk: n}}
		if err := ValidateFacts(facts); err != nil {
			if !errors.Is(err, ErrInvalidAnswer) {
				t.Fatalf("error without ErrInvalidAnswer: %v", err)
			}
			return
		}
		if !utf8.ValidString(product+version+dk+dv) || n < 0 || n > MaxSeatCount || product == "" {
			t.Fatalf("accepted bad facts %+v", facts)
		}
	})
}
