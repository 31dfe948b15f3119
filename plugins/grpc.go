package plugins

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pluginpb "github.com/switchboard-dev/switchboard/plugins/proto"
)

// Flow-control windows of plugin connections. Fixed windows turn off
// grpc-go's bandwidth-delay estimator, which otherwise sends a PING (and
// gets an ack) with every answer: on a unix socket to a local process
// there is no bandwidth to discover, and the extra frames cost both
// processes a write and a wake-up per call. The windows are large enough
// that a MaxMessageBytes answer is not throttled on loopback.
const (
	streamWindowBytes = 1 << 20
	connWindowBytes   = MaxMessageBytes
)

// TransportDialOptions are the host side's transport settings for plugin
// connections, to be added to DialOptions (see the window constants).
func TransportDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(streamWindowBytes),
		grpc.WithInitialConnWindowSize(connWindowBytes),
	}
}

// streamWorkers serve a plugin's calls from goroutines that live on, so a
// call does not pay for a new goroutine and the growth of its stack (grpc-go
// starts a goroutine per call otherwise). When all are busy (a hung
// implementation) grpc-go starts a goroutine for the call as before.
const streamWorkers = 4

// ServerOptions are a plugin's gRPC server settings, the counterpart of
// TransportDialOptions.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(streamWindowBytes),
		grpc.InitialConnWindowSize(connWindowBytes),
		grpc.NumStreamWorkers(streamWorkers),
	}
}

// NewGRPCServer is go-plugin's server constructor with ServerOptions added
// to the ones go-plugin passes (TLS).
func NewGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts, ServerOptions()...)...)
}

// ErrUnimplemented means the plugin does not serve the method, usually
// because it is of another kind than the manifest says.
var ErrUnimplemented = errors.New("the plugin does not implement this method")

// ErrUnavailable means the connection to the plugin is gone (the process
// exited or stopped answering at the transport level).
var ErrUnavailable = errors.New("plugin unavailable")

// RemoteError is an error a plugin returned from one of its methods. The
// message has been sanitised (see SanitizeMessage).
type RemoteError struct {
	Method  string
	Code    codes.Code
	Message string
}

func (e *RemoteError) Error() string { return e.Method + ": " + e.Message }

// callError turns what a gRPC call returned into an error a host can act on.
func callError(ctx context.Context, method string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", method, ctxErr)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w: %s", method, ErrUnavailable, SanitizeMessage(err.Error()))
	}
	msg := SanitizeMessage(st.Message())
	switch st.Code() {
	case codes.Unimplemented:
		return fmt.Errorf("%s: %w", method, ErrUnimplemented)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w", method, context.DeadlineExceeded)
	case codes.Unavailable, codes.Canceled:
		return fmt.Errorf("%s: %w: %s", method, ErrUnavailable, msg)
	case codes.ResourceExhausted:
		return fmt.Errorf("%s: %w: %s", method, ErrInvalidAnswer, msg)
	case codes.Internal:
		// What grpc-go says when the answer does not decode (a plugin in
		// another language sending invalid UTF-8, truncated messages ...).
		if strings.Contains(msg, "unmarshal") {
			return fmt.Errorf("%s: %w: %s", method, ErrInvalidAnswer, msg)
		}
	}
	return &RemoteError{Method: method, Code: st.Code(), Message: msg}
}

// serverError turns what an implementation returned into a gRPC status.
func serverError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// recoverInto turns a panic in a plugin implementation into an error so one
// bad call does not take the plugin process down.
func recoverInto(method string, errp *error) {
	if r := recover(); r != nil {
		*errp = status.Errorf(codes.Internal, "%s panicked: %v\n%s", method, r, debug.Stack())
	}
}

func toTimestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromTimestamp(ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, invalid("timestamp: %v", err)
	}
	return ts.AsTime(), nil
}

func healthToPB(h Health) *pluginpb.HealthReport {
	return &pluginpb.HealthReport{Healthy: h.Healthy, State: h.State, Detail: h.Detail, Since: toTimestamp(h.Since)}
}

func healthFromPB(pb *pluginpb.HealthReport) (Health, error) {
	since, err := fromTimestamp(pb.GetSince())
	if err != nil {
		return Health{}, err
	}
	h := Health{Healthy: pb.GetHealthy(), State: pb.GetState(), Detail: pb.GetDetail(), Since: since}
	if err := ValidateHealth(h, time.Now()); err != nil {
		return Health{}, err
	}
	return h, nil
}

func healthCall(ctx context.Context, call func(context.Context, *pluginpb.HealthRequest) (*pluginpb.HealthReport, error)) (Health, error) {
	resp, err := call(ctx, &pluginpb.HealthRequest{})
	if err != nil {
		return Health{}, callError(ctx, "health", err)
	}
	h, err := healthFromPB(resp)
	if err != nil {
		return Health{}, fmt.Errorf("health: %w", err)
	}
	return h, nil
}
