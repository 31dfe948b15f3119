// Package sender drains the agent's outbox into the registry: in order, in
// batches of consecutive heartbeats, signed with the install key, with
// exponential backoff and jitter between failed attempts, honouring
// Retry-After. A record leaves the outbox only after a 2xx (delivery is at
// least once; the registry's (install, seq) idempotency makes it exactly
// once in effect) or after a permanent refusal, in which case it is parked
// in the outbox's dead-letter bucket and reported, never lost silently.
package sender

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// Hooks is how the sender hands the registry's answers to the agent.
type Hooks interface {
	// InstallID is the install id, "" before activation.
	InstallID() string
	// Activated stores the activation answer; an error makes the sender
	// retry the activation (it is idempotent for the same key).
	Activated(resp api.ActivationResponse) error
	// ReportsAnswered sees every report batch answer (interval, re-issued licence).
	ReportsAnswered(resp api.ReportBatchResponse)
	// Linked stores a link answer (re-issued licence with the partner).
	Linked(seq uint64, resp api.LinkResponse)
	// LinkRefused is told that the registry refused a link record for good
	// (for example 409 already linked to another partner).
	LinkRefused(seq uint64, err *APIError)
	// Deactivated is told that the registry recorded the deactivation.
	Deactivated(seq uint64)
}

// Options configure a Sender.
type Options struct {
	URL            string // registry base URL, no trailing slash
	Key            ed25519.PrivateKey
	BatchSize      int
	BackoffMin     time.Duration
	BackoffMax     time.Duration
	RequestTimeout time.Duration
	Client         *http.Client
	Log            hclog.Logger
	Hooks          Hooks
	Now            func() time.Time
}

// Status is what the sender last saw of the registry.
type Status struct {
	URL                 string    `json:"url"`
	Reachable           bool      `json:"reachable"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	LastAttempt         time.Time `json:"last_attempt,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	LastErrorAt         time.Time `json:"last_error_at,omitzero"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	NextAttempt         time.Time `json:"next_attempt,omitzero"`
	Delivered           uint64    `json:"delivered"`     // records acknowledged since start
	DeadLettered        uint64    `json:"dead_lettered"` // records refused for good since start
	Waiting             string    `json:"waiting,omitempty"`
}

// APIError is an error answer of the registry.
type APIError struct {
	HTTPStatus int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("registry answered HTTP %d: %s", e.HTTPStatus, e.Message)
	}
	return fmt.Sprintf("registry answered HTTP %d %s: %s", e.HTTPStatus, e.Code, e.Message)
}

// Permanent reports whether retrying the same request cannot succeed.
func (e *APIError) Permanent() bool {
	switch {
	case e.HTTPStatus == http.StatusRequestTimeout, e.HTTPStatus == http.StatusTooEarly,
		e.HTTPStatus == http.StatusTooManyRequests:
		return false
	case e.HTTPStatus >= 400 && e.HTTPStatus < 500:
		return true
	}
	return false
}

// Sender drains one outbox.
type Sender struct {
	ob   *outbox.Outbox
	opts Options
	log  hclog.Logger
	poke chan struct{}

	mu      sync.Mutex
	st      Status
	batch   int
	attempt int
}

// New returns a sender for ob.
func New(ob *outbox.Outbox, opts Options) *Sender {
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BatchSize < 1 {
		opts.BatchSize = 500
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = opts.BackoffMin
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	return &Sender{ob: ob, opts: opts, log: opts.Log, poke: make(chan struct{}, 1),
		batch: opts.BatchSize, st: Status{URL: opts.URL}}
}

// Status returns a copy of the sender's status.
func (s *Sender) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Poke wakes the sender, for example after the install id became known or
// the configuration changed.
func (s *Sender) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Run drains the outbox until ctx is done.
func (s *Sender) Run(ctx context.Context) {
	_ = s.drain(ctx, false)
}

// Flush drains until the outbox is empty or ctx is done. It returns nil
// when everything was delivered or dead-lettered.
func (s *Sender) Flush(ctx context.Context) error {
	return s.drain(ctx, true)
}

// errEmpty ends a flush.
var errEmpty = errors.New("outbox empty")

func (s *Sender) drain(ctx context.Context, untilEmpty bool) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped with %d records still in the outbox: %w", s.ob.Stats().Depth, err)
		}
		wait, err := s.step(ctx)
		if errors.Is(err, errEmpty) {
			if untilEmpty {
				return nil
			}
			select {
			case <-ctx.Done():
			case <-s.ob.Notify():
			case <-s.poke:
			}
			continue
		}
		if wait > 0 {
			s.mu.Lock()
			s.st.NextAttempt = s.opts.Now().Add(wait)
			s.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			case <-s.poke:
			}
			t.Stop()
		}
	}
}

// step sends the head of the queue once and says how long to wait before
// the next step.
func (s *Sender) step(ctx context.Context) (time.Duration, error) {
	s.mu.Lock()
	batch := s.batch
	s.mu.Unlock()
	recs, err := s.ob.Next(batch)
	if err != nil {
		s.log.Error("read outbox", "error", err)
		return s.failed(err, 0), nil
	}
	if len(recs) == 0 {
		return 0, errEmpty
	}
	head := recs[0]
	if head.Kind != outbox.KindActivation && s.opts.Hooks.InstallID() == "" {
		s.mu.Lock()
		s.st.Waiting = "install not activated: waiting for the activation to be accepted (re-run the installer if it was refused)"
		s.mu.Unlock()
		return time.Minute, nil
	}
	s.mu.Lock()
	s.st.Waiting = ""
	s.st.LastAttempt = s.opts.Now()
	s.mu.Unlock()

	err = s.deliver(ctx, recs)
	var ae *APIError
	switch {
	case err == nil:
		seqs := make([]uint64, len(recs))
		for i, r := range recs {
			seqs[i] = r.Seq
		}
		if err := s.ob.Ack(seqs...); err != nil {
			s.log.Error("remove delivered records from the outbox; they will be sent again", "error", err)
			return s.failed(err, 0), nil
		}
		s.mu.Lock()
		s.attempt = 0
		s.st.Reachable = true
		s.st.LastSuccess = s.opts.Now()
		s.st.ConsecutiveFailures = 0
		s.st.Delivered += uint64(len(recs))
		s.st.NextAttempt = time.Time{}
		// Grow back towards the configured batch after a 413.
		if s.batch < s.opts.BatchSize {
			s.batch = min(s.batch*2, s.opts.BatchSize)
		}
		s.mu.Unlock()
		return 0, nil
	case errors.As(err, &ae) && ae.HTTPStatus == http.StatusRequestEntityTooLarge && len(recs) > 1:
		s.mu.Lock()
		s.batch = max(1, len(recs)/2)
		s.mu.Unlock()
		s.log.Warn("registry refused a batch as too large; sending smaller batches", "records", len(recs))
		return 0, nil
	case errors.As(err, &ae) && ae.Permanent():
		seqs := make([]uint64, len(recs))
		for i, r := range recs {
			seqs[i] = r.Seq
		}
		s.log.Error("registry refused records for good; parked in the dead-letter bucket",
			"kind", head.Kind, "first_seq", head.Seq, "records", len(recs), "status", ae.HTTPStatus, "code", ae.Code, "error", ae.Message)
		if derr := s.ob.DeadLetter(ae.Error(), ae.HTTPStatus, seqs...); derr != nil {
			s.log.Error("park refused records", "error", derr)
			return s.failed(derr, 0), nil
		}
		if head.Kind == outbox.KindLink {
			s.opts.Hooks.LinkRefused(head.Seq, ae)
		}
		if th, ok := s.opts.Hooks.(TicketHooks); ok && head.Kind == outbox.KindSupportTicket {
			th.TicketRefused(head, ae)
		}
		s.mu.Lock()
		// The registry answered, so it is reachable.
		s.st.Reachable = true
		s.st.LastError, s.st.LastErrorAt = ae.Error(), s.opts.Now()
		s.st.DeadLettered += uint64(len(recs))
		s.mu.Unlock()
		return 0, nil
	case errors.Is(err, errUnsupported):
		s.log.Error("record cannot be delivered by this agent; parked in the dead-letter bucket", "kind", head.Kind, "seq", head.Seq, "error", err)
		if derr := s.ob.DeadLetter(err.Error(), 0, head.Seq); derr != nil {
			return s.failed(derr, 0), nil
		}
		s.mu.Lock()
		s.st.DeadLettered++
		s.mu.Unlock()
		return 0, nil
	default:
		var retryAfter time.Duration
		if ae != nil {
			retryAfter = ae.RetryAfter
		}
		if ctx.Err() != nil {
			return 0, nil
		}
		wait := s.failed(err, retryAfter)
		s.log.Warn("registry not reachable; will retry", "kind", head.Kind, "records", len(recs), "retry_in", wait.Round(time.Millisecond), "error", err)
		return wait, nil
	}
}

// failed records a transient failure and returns the wait before the next try.
func (s *Sender) failed(err error, retryAfter time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.ConsecutiveFailures++
	s.st.LastError, s.st.LastErrorAt = err.Error(), s.opts.Now()
	var ae *APIError
	s.st.Reachable = errors.As(err, &ae) // an HTTP answer, even 503, means reachable
	wait := Backoff(s.opts.BackoffMin, s.opts.BackoffMax, s.attempt)
	s.attempt++
	if retryAfter > wait {
		wait = retryAfter
	}
	return wait
}

// Backoff is the wait before retry number attempt (0-based): exponential
// from min to max, with the upper half jittered so a fleet of servers that
// lost the registry together do not come back together.
func Backoff(min, max time.Duration, attempt int) time.Duration {
	d := min
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

var errUnsupported = errors.New("not implemented yet")

func (s *Sender) deliver(ctx context.Context, recs []outbox.Record) error {
	head := recs[0]
	id := s.opts.Hooks.InstallID()
	switch head.Kind {
	case outbox.KindActivation:
		var resp api.ActivationResponse
		if err := s.post(ctx, api.PathActivations, "", head.Body, &resp); err != nil {
			return err
		}
		if resp.InstallID == "" {
			return errors.New("registry answered the activation without an install id")
		}
		return s.opts.Hooks.Activated(resp)
	case outbox.KindHeartbeat, outbox.KindHeartbeatSummary:
		batch := api.ReportBatch{Reports: make([]api.Report, len(recs))}
		for i, r := range recs {
			if err := json.Unmarshal(r.Body, &batch.Reports[i]); err != nil {
				return fmt.Errorf("%w: outbox record %d is damaged: %v", errUnsupported, r.Seq, err)
			}
			batch.Reports[i].Seq = r.Seq
			batch.Reports[i].Kind = api.ReportKind(r.Kind)
		}
		body, err := json.Marshal(batch)
		if err != nil {
			return fmt.Errorf("encode report batch: %w", err)
		}
		var resp api.ReportBatchResponse
		if err := s.post(ctx, api.InstallPath(api.PathReports, id), id, body, &resp); err != nil {
			return err
		}
		got := make(map[uint64]string, len(resp.Results))
		for _, r := range resp.Results {
			got[r.Seq] = r.Status
		}
		for _, r := range recs {
			if st := got[r.Seq]; st != api.StatusStored && st != api.StatusDuplicate {
				return fmt.Errorf("registry answered the batch without a stored/duplicate result for seq %d (got %q): will resend", r.Seq, st)
			}
		}
		s.opts.Hooks.ReportsAnswered(resp)
		return nil
	case outbox.KindLink:
		var req api.LinkRequest
		if err := json.Unmarshal(head.Body, &req); err != nil {
			return fmt.Errorf("%w: outbox link record %d is damaged: %v", errUnsupported, head.Seq, err)
		}
		req.Seq = head.Seq
		body, _ := json.Marshal(req)
		var resp api.LinkResponse
		if err := s.post(ctx, api.InstallPath(api.PathLink, id), id, body, &resp); err != nil {
			return err
		}
		s.opts.Hooks.Linked(head.Seq, resp)
		return nil
	case outbox.KindDeactivation:
		var req api.DeactivateRequest
		if err := json.Unmarshal(head.Body, &req); err != nil {
			return fmt.Errorf("%w: outbox deactivation record %d is damaged: %v", errUnsupported, head.Seq, err)
		}
		req.Seq = head.Seq
		body, _ := json.Marshal(req)
		if err := s.post(ctx, api.InstallPath(api.PathDeactivate, id), id, body, nil); err != nil {
			return err
		}
		s.opts.Hooks.Deactivated(head.Seq)
		return nil
	case outbox.KindSupportTicket:
		return s.deliverSupport(ctx, id, head)
	}
	return fmt.Errorf("%w: record kind %q", errUnsupported, head.Kind)
}

// maxAnswer bounds what is read from the registry.
const maxAnswer = 16 << 20

func (s *Sender) post(ctx context.Context, path, installID string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.URL+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	api.SignRequest(req, body, installID, s.opts.Key, s.opts.Now())
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("POST %s: read answer: %w", path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &APIError{HTTPStatus: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), s.opts.Now())}
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
		} else {
			ae.Message = http.StatusText(resp.StatusCode)
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("POST %s: registry answered HTTP %d with an unreadable body: %w", path, resp.StatusCode, err)
	}
	return nil
}

// maxRetryAfter caps a registry's Retry-After, so a bad value cannot stop
// reporting for days.
const maxRetryAfter = time.Hour

func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}
