// Command smtpd is a small SMTP server (github.com/emersion/go-smtp) for the
// e-mail channel's tests: STARTTLS with the given certificate, AUTH PLAIN
// and LOGIN for one user (only after STARTTLS), and every accepted message
// written to DIR/<n>.eml. It prints "listening ADDR" once it accepts.
//
//	smtpd -cert C -key K -user U -pass P -dir DIR [-listen 127.0.0.1:0]
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

var (
	user, pass, dir string
	seq             atomic.Int64
)

type session struct {
	authed bool
	from   string
	to     []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(u, p string) error {
		if u != user || p != pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		s.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, u, p string) error { return check(u, p) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of AUTH LOGIN (go-sasl only has the client).
type loginServer struct {
	check func(u, p string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(resp) > 0 { // initial response carries the user name
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	n := seq.Add(1)
	env := fmt.Sprintf("X-Envelope-From: %s\r\nX-Envelope-To: %v\r\n", s.from, s.to)
	return os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.eml", n)), append([]byte(env), data...), 0o600)
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func main() {
	cert := flag.String("cert", "", "server certificate PEM")
	key := flag.String("key", "", "server key PEM")
	listen := flag.String("listen", "127.0.0.1:0", "address")
	flag.StringVar(&user, "user", "", "the one user")
	flag.StringVar(&pass, "pass", "", "its password")
	flag.StringVar(&dir, "dir", "", "where messages are written")
	flag.Parse()
	kp, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtpd:", err)
		os.Exit(1)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{}, nil }))
	srv.Domain = "smtp.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{kp}}
	srv.AllowInsecureAuth = false
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtpd:", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "smtpd:", err)
		os.Exit(1)
	}
}
