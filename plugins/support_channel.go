package plugins

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/switchboard-dev/switchboard/plugins/proto"
)

// SupportChannelPlugin is the go-plugin glue for SupportChannel. A plugin
// binary sets Impl; a host leaves it nil and dispenses a
// *SupportChannelClient.
type SupportChannelPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl SupportChannel
}

var _ plugin.GRPCPlugin = (*SupportChannelPlugin)(nil)

// GRPCServer registers Impl on the plugin's gRPC server.
func (p *SupportChannelPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("support channel plugin: no implementation to serve")
	}
	RegisterSupportChannelServer(s, p.Impl)
	return nil
}

// GRPCClient returns the host's client; see IntegrationPlugin.GRPCClient.
func (p *SupportChannelPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &SupportChannelClient{rpc: pluginpb.NewSupportChannelClient(c), exited: ctx.Done()}, nil
}

// RegisterSupportChannelServer serves impl as the SupportChannel gRPC
// service on s.
func RegisterSupportChannelServer(s grpc.ServiceRegistrar, impl SupportChannel) {
	pluginpb.RegisterSupportChannelServer(s, &supportChannelServer{impl: impl})
}

type supportChannelServer struct {
	pluginpb.UnimplementedSupportChannelServer
	impl SupportChannel
}

func (s *supportChannelServer) Configure(ctx context.Context, req *pluginpb.ConfigureRequest) (_ *pluginpb.ConfigureResponse, err error) {
	defer recoverInto("configure", &err)
	if err := s.impl.Configure(ctx, req.GetSettings()); err != nil {
		return nil, serverError(err)
	}
	return &pluginpb.ConfigureResponse{}, nil
}

func (s *supportChannelServer) Deliver(ctx context.Context, req *pluginpb.DeliverRequest) (_ *pluginpb.Receipt, err error) {
	defer recoverInto("deliver", &err)
	pt := req.GetTicket()
	created, err := fromTimestamp(pt.GetCreatedAt())
	if err != nil {
		return nil, serverError(fmt.Errorf("ticket created_at: %w", err))
	}
	t := Ticket{
		ID: pt.GetId(), DeliveryID: pt.GetDeliveryId(), Subject: pt.GetSubject(), Body: pt.GetBody(),
		InstallID: pt.GetInstallId(), Customer: pt.GetCustomer(), PartnerCode: pt.GetPartnerCode(),
		RoutedTo: pt.GetRoutedTo(), Reason: pt.GetReason(), Diagnostics: pt.GetDiagnostics(),
		CreatedAt: created,
	}
	r, err := s.impl.Deliver(ctx, t)
	if err != nil {
		return nil, serverError(err)
	}
	return &pluginpb.Receipt{RemoteId: r.RemoteID, Url: r.URL, Detail: r.Detail}, nil
}

// DeliverNote serves the optional note delivery: a channel without
// NoteDeliverer answers Unimplemented, which the host reports as
// ErrNotesUnsupported.
func (s *supportChannelServer) DeliverNote(ctx context.Context, req *pluginpb.DeliverNoteRequest) (_ *pluginpb.Receipt, err error) {
	defer recoverInto("deliver note", &err)
	nd, ok := s.impl.(NoteDeliverer)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this support channel cannot deliver notes")
	}
	pn := req.GetNote()
	created, err := fromTimestamp(pn.GetCreatedAt())
	if err != nil {
		return nil, serverError(fmt.Errorf("note created_at: %w", err))
	}
	tr := pn.GetTicketReceipt()
	n := Note{
		TicketID: pn.GetTicketId(), TicketSubject: pn.GetTicketSubject(),
		TicketReceipt: Receipt{RemoteID: tr.GetRemoteId(), URL: tr.GetUrl(), Detail: tr.GetDetail()},
		NoteID:        pn.GetNoteId(), DeliveryID: pn.GetDeliveryId(), Text: pn.GetText(), Author: pn.GetAuthor(),
		CreatedAt: created,
	}
	r, err := nd.DeliverNote(ctx, n)
	if err != nil {
		return nil, serverError(err)
	}
	return &pluginpb.Receipt{RemoteId: r.RemoteID, Url: r.URL, Detail: r.Detail}, nil
}

func (s *supportChannelServer) Health(ctx context.Context, _ *pluginpb.HealthRequest) (_ *pluginpb.HealthReport, err error) {
	defer recoverInto("health", &err)
	h, err := s.impl.Health(ctx)
	if err != nil {
		return nil, serverError(err)
	}
	return healthToPB(h), nil
}

// SupportChannelClient is the host side of a SupportChannel plugin; it
// checks every receipt against the contract (see ValidateReceipt).
type SupportChannelClient struct {
	rpc    pluginpb.SupportChannelClient
	exited <-chan struct{}
}

var _ SupportChannel = (*SupportChannelClient)(nil)

// NewSupportChannelClient wraps a plain gRPC connection; its Exited
// channel never closes.
func NewSupportChannelClient(conn grpc.ClientConnInterface) *SupportChannelClient {
	return &SupportChannelClient{rpc: pluginpb.NewSupportChannelClient(conn)}
}

// Exited is closed when the plugin process has exited.
func (c *SupportChannelClient) Exited() <-chan struct{} { return c.exited }

// Configure sends the settings.
func (c *SupportChannelClient) Configure(ctx context.Context, settings map[string]string) error {
	if _, err := c.rpc.Configure(ctx, &pluginpb.ConfigureRequest{Settings: settings}); err != nil {
		return callError(ctx, "configure", err)
	}
	return nil
}

// Deliver sends a ticket and checks the receipt.
func (c *SupportChannelClient) Deliver(ctx context.Context, t Ticket) (Receipt, error) {
	resp, err := c.rpc.Deliver(ctx, &pluginpb.DeliverRequest{Ticket: &pluginpb.Ticket{
		Id: t.ID, DeliveryId: t.DeliveryID, Subject: t.Subject, Body: t.Body,
		InstallId: t.InstallID, Customer: t.Customer, PartnerCode: t.PartnerCode,
		RoutedTo: t.RoutedTo, Reason: t.Reason, Diagnostics: t.Diagnostics,
		CreatedAt: toTimestamp(t.CreatedAt),
	}})
	if err != nil {
		return Receipt{}, callError(ctx, "deliver", err)
	}
	r := Receipt{RemoteID: resp.GetRemoteId(), URL: resp.GetUrl(), Detail: resp.GetDetail()}
	if err := ValidateReceipt(r); err != nil {
		return Receipt{}, fmt.Errorf("deliver: %w", err)
	}
	return r, nil
}

// ErrNotesUnsupported means the channel plugin cannot deliver notes
// (it does not serve DeliverNote); retrying does not help.
var ErrNotesUnsupported = errors.New("the support channel cannot deliver notes")

var _ NoteDeliverer = (*SupportChannelClient)(nil)

// DeliverNote sends a note and checks the receipt. A plugin that does not
// serve DeliverNote gives an error wrapping ErrNotesUnsupported.
func (c *SupportChannelClient) DeliverNote(ctx context.Context, n Note) (Receipt, error) {
	resp, err := c.rpc.DeliverNote(ctx, &pluginpb.DeliverNoteRequest{Note: &pluginpb.Note{
		TicketId: n.TicketID, TicketSubject: n.TicketSubject,
		TicketReceipt: &pluginpb.Receipt{RemoteId: n.TicketReceipt.RemoteID, Url: n.TicketReceipt.URL, Detail: n.TicketReceipt.Detail},
		NoteId:        n.NoteID, DeliveryId: n.DeliveryID, Text: n.Text, Author: n.Author,
		CreatedAt: toTimestamp(n.CreatedAt),
	}})
	if err != nil {
		err = callError(ctx, "deliver note", err)
		if errors.Is(err, ErrUnimplemented) {
			return Receipt{}, fmt.Errorf("deliver note: %w", ErrNotesUnsupported)
		}
		return Receipt{}, err
	}
	r := Receipt{RemoteID: resp.GetRemoteId(), URL: resp.GetUrl(), Detail: resp.GetDetail()}
	if err := ValidateReceipt(r); err != nil {
		return Receipt{}, fmt.Errorf("deliver note: %w", err)
	}
	return r, nil
}

// Health asks for the channel's health report and checks it.
func (c *SupportChannelClient) Health(ctx context.Context) (Health, error) {
	return healthCall(ctx, func(ctx context.Context, req *pluginpb.HealthRequest) (*pluginpb.HealthReport, error) {
		return c.rpc.Health(ctx, req)
	})
}
