package asterisk

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/CyCoreSystems/ari/v5"
)

// maxEventBytes bounds one websocket message. A channel event is well under
// 4 KiB; anything near this limit is not ARI.
const maxEventBytes = 1 << 20

// usedEventTypes are the only event types the adapter acts on. They are the
// allowed list of the application's event filter, and the only types
// DecodeEvent hands to the library's decoder.
var usedEventTypes = []string{
	"ChannelCreated",
	"ChannelDestroyed",
	"ChannelStateChange",
	"EndpointStateChange",
	"ApplicationReplaced",
}

// Event is what the adapter takes from one ARI websocket message.
type Event struct {
	// Type is the message's "type".
	Type string
	// Used is false for event types the adapter ignores (including types
	// the ari/v5 library does not know, which it must never see).
	Used bool
	// ChannelID is set for channel events.
	ChannelID string
	// Endpoint is tech/resource for EndpointStateChange.
	Endpoint string
	// Technology is the endpoint's technology for EndpointStateChange.
	Technology string
	// State is the channel or endpoint state.
	State string
	// Application is the application the event was sent to.
	Application string
}

// DecodeEvent decodes one websocket message. Only the used event types go
// through ari.DecodeEvent (guarded against panics all the same); any other
// type, known to the library or not, comes back with Used=false and no
// error. A message that is not an ARI event object is an error.
func DecodeEvent(data []byte) (Event, error) {
	if len(data) > maxEventBytes {
		return Event{}, fmt.Errorf("ARI event of %d bytes is larger than %d", len(data), maxEventBytes)
	}
	var head struct {
		Type        string `json:"type"`
		Application string `json:"application"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Event{}, fmt.Errorf("ARI event is not a JSON object with a string \"type\": %w", err)
	}
	if head.Type == "" {
		return Event{}, errors.New("ARI event has no \"type\"")
	}
	ev := Event{Type: oneLine(head.Type, 64), Application: oneLine(head.Application, 128)}
	if !slices.Contains(usedEventTypes, head.Type) {
		return ev, nil
	}
	decoded, err := libraryDecode(data)
	if err != nil {
		return Event{}, fmt.Errorf("decode ARI %s event: %w", head.Type, err)
	}
	ev.Used = true
	switch e := decoded.(type) {
	case *ari.ChannelCreated:
		ev.ChannelID, ev.State = e.Channel.ID, e.Channel.State
	case *ari.ChannelDestroyed:
		ev.ChannelID, ev.State = e.Channel.ID, e.Channel.State
	case *ari.ChannelStateChange:
		ev.ChannelID, ev.State = e.Channel.ID, e.Channel.State
	case *ari.EndpointStateChange:
		if e.Endpoint.Technology == "" || e.Endpoint.Resource == "" {
			return Event{}, fmt.Errorf("ARI %s event without endpoint technology and resource", head.Type)
		}
		ev.Technology, ev.State = e.Endpoint.Technology, e.Endpoint.State
		ev.Endpoint = e.Endpoint.Technology + "/" + e.Endpoint.Resource
	case *ari.ApplicationReplaced:
	default:
		return Event{}, fmt.Errorf("ARI %s event decoded to unexpected %T", head.Type, decoded)
	}
	if ev.ChannelID == "" && ev.Type != "EndpointStateChange" && ev.Type != "ApplicationReplaced" {
		return Event{}, fmt.Errorf("ARI %s event without channel id", head.Type)
	}
	return ev, nil
}

// libraryDecode runs ari.DecodeEvent and turns a panic or a nil event into
// an error: the library is not trusted with input from the network.
func libraryDecode(data []byte) (ev ari.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev, err = nil, fmt.Errorf("ari/v5 decoder panicked: %v", r)
		}
	}()
	ev, err = ari.DecodeEvent(data)
	if err == nil && ev == nil {
		err = errors.New("ari/v5 decoder returned no event")
	}
	return ev, err
}
