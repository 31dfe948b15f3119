package plugins

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginpb "github.com/switchboard-dev/switchboard/plugins/proto"
)

// IntegrationPlugin is the go-plugin glue for Integration. A plugin binary
// sets Impl; a host leaves it nil and dispenses an *IntegrationClient.
type IntegrationPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Integration
}

var _ plugin.GRPCPlugin = (*IntegrationPlugin)(nil)

// GRPCServer registers Impl on the plugin's gRPC server.
func (p *IntegrationPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("integration plugin: no implementation to serve")
	}
	RegisterIntegrationServer(s, p.Impl)
	return nil
}

// GRPCClient returns the host's client. ctx is cancelled by go-plugin when
// the plugin process exits; the client exposes it as Exited.
func (p *IntegrationPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &IntegrationClient{rpc: pluginpb.NewIntegrationClient(c), exited: ctx.Done()}, nil
}

// RegisterIntegrationServer serves impl as the Integration gRPC service on s.
// go-plugin does this through IntegrationPlugin; it is exported for hosts
// that use plain gRPC (benchmarks, tests).
func RegisterIntegrationServer(s grpc.ServiceRegistrar, impl Integration) {
	pluginpb.RegisterIntegrationServer(s, &integrationServer{impl: impl})
}

// integrationServer adapts an Integration to the generated gRPC interface.
type integrationServer struct {
	pluginpb.UnimplementedIntegrationServer
	impl Integration
}

func (s *integrationServer) Configure(ctx context.Context, req *pluginpb.ConfigureRequest) (_ *pluginpb.ConfigureResponse, err error) {
	defer recoverInto("configure", &err)
	if err := s.impl.Configure(ctx, req.GetSettings()); err != nil {
		return nil, serverError(err)
	}
	return &pluginpb.ConfigureResponse{}, nil
}

func (s *integrationServer) Describe(ctx context.Context, _ *pluginpb.DescribeRequest) (_ *pluginpb.Facts, err error) {
	defer recoverInto("describe", &err)
	f, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, serverError(err)
	}
	return &pluginpb.Facts{
		Product: f.Product, Version: f.Version, Distribution: f.Distribution, Build: f.Build,
		Details: f.Details, Seats: f.Seats,
	}, nil
}

func (s *integrationServer) Health(ctx context.Context, _ *pluginpb.HealthRequest) (_ *pluginpb.HealthReport, err error) {
	defer recoverInto("health", &err)
	h, err := s.impl.Health(ctx)
	if err != nil {
		return nil, serverError(err)
	}
	return healthToPB(h), nil
}

func (s *integrationServer) ApplyPartnerLink(ctx context.Context, req *pluginpb.ApplyPartnerLinkRequest) (_ *pluginpb.ApplyPartnerLinkResponse, err error) {
	defer recoverInto("apply partner link", &err)
	r, err := s.impl.ApplyPartnerLink(ctx, req.GetCode(), req.GetTier())
	if err != nil {
		return nil, serverError(err)
	}
	return &pluginpb.ApplyPartnerLinkResponse{Applied: r.Applied, Detail: r.Detail}, nil
}

// IntegrationClient is the host side of an Integration plugin. It checks
// every answer against the contract (see ValidateFacts) and turns a broken
// one into an error wrapping ErrInvalidAnswer.
type IntegrationClient struct {
	rpc    pluginpb.IntegrationClient
	exited <-chan struct{}
}

var _ Integration = (*IntegrationClient)(nil)

// NewIntegrationClient wraps a plain gRPC connection (no go-plugin process
// behind it); its Exited channel never closes.
func NewIntegrationClient(conn grpc.ClientConnInterface) *IntegrationClient {
	return &IntegrationClient{rpc: pluginpb.NewIntegrationClient(conn)}
}

// Exited is closed when the plugin process has exited (nil for clients
// made with NewIntegrationClient).
func (c *IntegrationClient) Exited() <-chan struct{} { return c.exited }

// Configure sends the settings.
func (c *IntegrationClient) Configure(ctx context.Context, settings map[string]string) error {
	if _, err := c.rpc.Configure(ctx, &pluginpb.ConfigureRequest{Settings: settings}); err != nil {
		return callError(ctx, "configure", err)
	}
	return nil
}

// Describe asks for the product's facts and checks them.
func (c *IntegrationClient) Describe(ctx context.Context) (Facts, error) {
	resp, err := c.rpc.Describe(ctx, &pluginpb.DescribeRequest{})
	if err != nil {
		return Facts{}, callError(ctx, "describe", err)
	}
	// resp was decoded for this call alone, so its maps are handed on
	// rather than copied.
	f := Facts{
		Product: resp.GetProduct(), Version: resp.GetVersion(),
		Distribution: resp.GetDistribution(), Build: resp.GetBuild(),
	}
	if len(resp.GetDetails()) > 0 {
		f.Details = resp.GetDetails()
	}
	if len(resp.GetSeats()) > 0 {
		f.Seats = resp.GetSeats()
	}
	if err := ValidateFacts(f); err != nil {
		return Facts{}, fmt.Errorf("describe: %w", err)
	}
	return f, nil
}

// Health asks for the plugin's health report and checks it.
func (c *IntegrationClient) Health(ctx context.Context) (Health, error) {
	return healthCall(ctx, func(ctx context.Context, req *pluginpb.HealthRequest) (*pluginpb.HealthReport, error) {
		return c.rpc.Health(ctx, req)
	})
}

// ApplyPartnerLink asks the plugin to write the partner code into the product.
func (c *IntegrationClient) ApplyPartnerLink(ctx context.Context, code, tier string) (LinkResult, error) {
	resp, err := c.rpc.ApplyPartnerLink(ctx, &pluginpb.ApplyPartnerLinkRequest{Code: code, Tier: tier})
	if err != nil {
		return LinkResult{}, callError(ctx, "apply partner link", err)
	}
	r := LinkResult{Applied: resp.GetApplied(), Detail: resp.GetDetail()}
	if err := ValidateLinkResult(r); err != nil {
		return LinkResult{}, fmt.Errorf("apply partner link: %w", err)
	}
	return r, nil
}
