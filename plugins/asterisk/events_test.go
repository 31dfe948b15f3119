package asterisk

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDecodeEvent(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    Event
		wantErr string
	}{
		"channel created": {
			in:   `{"type":"ChannelCreated","application":"sb","timestamp":"2025-07-21T10:00:00.000+0000","asterisk_id":"x","channel":{"id":"1.1","name":"PJSIP/100-00000001","state":"Ring","creationtime":"2025-07-21T10:00:00.000+0000"}}`,
			want: Event{Type: "ChannelCreated", Used: true, ChannelID: "1.1", State: "Ring", Application: "sb"},
		},
		"endpoint": {
			in:   `{"type":"EndpointStateChange","application":"sb","endpoint":{"technology":"PJSIP","resource":"100","state":"offline","channel_ids":[]}}`,
			want: Event{Type: "EndpointStateChange", Used: true, Endpoint: "PJSIP/100", Technology: "PJSIP", State: "offline", Application: "sb"},
		},
		"unknown to the library": {
			in:   `{"type":"ChannelTransfer","application":"sb","refer_to":{}}`,
			want: Event{Type: "ChannelTransfer", Application: "sb"},
		},
		"known but unused": {
			in:   `{"type":"StasisStart","application":"sb","channel":{"id":"1"}}`,
			want: Event{Type: "StasisStart", Application: "sb"},
		},
		"replaced":             {in: `{"type":"ApplicationReplaced","application":"sb"}`, want: Event{Type: "ApplicationReplaced", Used: true, Application: "sb"}},
		"not json":             {in: `<html>`, wantErr: "not a JSON object"},
		"array":                {in: `[1,2]`, wantErr: "not a JSON object"},
		"no type":              {in: `{"application":"sb"}`, wantErr: `no "type"`},
		"type not string":      {in: `{"type":7}`, wantErr: "not a JSON object"},
		"channel without id":   {in: `{"type":"ChannelDestroyed","channel":{"name":"x"}}`, wantErr: "without channel id"},
		"endpoint without res": {in: `{"type":"EndpointStateChange","endpoint":{"technology":"PJSIP"}}`, wantErr: "without endpoint"},
		"bad timestamp":        {in: `{"type":"ChannelCreated","timestamp":"yesterday","channel":{"id":"1"}}`, wantErr: "decode ARI ChannelCreated"},
		"channel not object":   {in: `{"type":"ChannelStateChange","channel":"1"}`, wantErr: "decode ARI ChannelStateChange"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeEvent([]byte(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %+v, %v; want error with %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
	if _, err := DecodeEvent([]byte(`{"type":"x","pad":"` + strings.Repeat("a", maxEventBytes) + `"}`)); err == nil {
		t.Fatal("oversized event accepted")
	}
}

// FuzzDecodeEvent: no input panics, and what is accepted is consistent.
// Seeds: the emulator's sample events (real Asterisk shapes, including the
// 20.15+/22.5+ types ari/v5 does not know) and testdata/fuzz/FuzzDecodeEvent.
func FuzzDecodeEvent(f *testing.F) {
	samples, _ := filepath.Glob(filepath.Join("..", "..", "internal", "emulator", "ari", "testdata", "events", "*.json"))
	for _, p := range samples {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"type":"ChannelDestroyed","cause":16,"cause_txt":"Normal Clearing","channel":{"id":"1.2","state":"Up"}}`))
	f.Add([]byte(`{"type":"EndpointStateChange","endpoint":{"technology":"IAX2","resource":"t","state":"online"}}`))
	f.Add([]byte(`{"type":"ChannelToneDetected","channel":{"id":"1"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			if ev != (Event{}) {
				t.Fatalf("error %v with a non-empty event %+v", err, ev)
			}
			return
		}
		if ev.Type == "" {
			t.Fatal("accepted an event without type")
		}
		if ev.Used != slices.Contains(usedEventTypes, ev.Type) {
			t.Fatalf("used=%v for type %q", ev.Used, ev.Type)
		}
		switch ev.Type {
		case "ChannelCreated", "ChannelDestroyed", "ChannelStateChange":
			if ev.ChannelID == "" {
				t.Fatalf("channel event without id: %+v", ev)
			}
		case "EndpointStateChange":
			if ev.Technology == "" || !strings.HasPrefix(ev.Endpoint, ev.Technology+"/") || len(ev.Endpoint) <= len(ev.Technology)+1 {
				t.Fatalf("endpoint event %+v", ev)
			}
		}
		again, err := DecodeEvent(data)
		if err != nil || again != ev {
			t.Fatalf("decoding is not deterministic: %+v / %+v, %v", ev, again, err)
		}
		// Whatever is accepted applies to a snapshot without panicking.
		s := &snapshot{endpoints: map[string]endpointState{}, channels: map[string]bool{}}
		s.apply(ev)
	})
}
