package ari

import (
	"testing"
	"time"

	ariv5 "github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/client/native"
)

// TestAriV5ClientTalksToEmulator connects the client library the Asterisk
// adapter uses and reads what the adapter reads. The client is deliberately
// not closed: ari/v5's Close races with its own reconnect loop (a data race
// -race would report), so the test ends it by closing the server.
func TestAriV5ClientTalksToEmulator(t *testing.T) {
	s := startServer(t, Options{Version: "22.5.0"})
	for _, res := range []string{"100", "101", "102"} {
		if err := s.AddEndpoint("PJSIP", res, "online"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddChannel(ChannelSpec{Endpoint: "PJSIP/100", State: "Up"}); err != nil {
		t.Fatal(err)
	}

	type result struct {
		c   ariv5.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := native.Connect(&native.Options{
			Application:  "switchboard-test",
			URL:          s.URL(),
			WebsocketURL: s.WebsocketURL(),
			Username:     DefaultUser,
			Password:     DefaultPassword,
			SubscribeAll: true,
		})
		done <- result{c, err}
	}()
	var cl ariv5.Client
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("connect: %v", r.err)
		}
		cl = r.c
	case <-time.After(10 * time.Second):
		t.Fatal("ari/v5 Connect did not return")
	}

	info, err := cl.Asterisk().Info(nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.SystemInfo.Version != "22.5.0" || info.SystemInfo.EntityID != DefaultEntityID {
		t.Fatalf("info %+v", info.SystemInfo)
	}
	if time.Since(time.Time(info.StatusInfo.StartupTime)) > time.Minute {
		t.Fatalf("startup time not parsed: %v", info.StatusInfo.StartupTime)
	}
	eps, err := cl.Endpoint().List(nil)
	if err != nil || len(eps) != 3 {
		t.Fatalf("endpoints %v %v", eps, err)
	}
	byTech, err := cl.Endpoint().ListByTech("PJSIP", nil)
	if err != nil || len(byTech) != 3 {
		t.Fatalf("endpoints by tech %v %v", byTech, err)
	}
	chans, err := cl.Channel().List(nil)
	if err != nil || len(chans) != 1 {
		t.Fatalf("channels %v %v", chans, err)
	}
	data, err := cl.Channel().Data(chans[0])
	if err != nil || data.State != "Up" {
		t.Fatalf("channel data %+v %v", data, err)
	}
	apps, err := cl.Application().List(nil)
	if err != nil || len(apps) != 1 || apps[0].ID != "switchboard-test" {
		t.Fatalf("applications %v %v", apps, err)
	}

	sub := cl.Bus().Subscribe(nil, "ChannelCreated", "EndpointStateChange", "ChannelDestroyed")
	if err := s.SetEndpointState("PJSIP", "101", "offline"); err != nil {
		t.Fatal(err)
	}
	id, err := s.AddChannel(ChannelSpec{Endpoint: "PJSIP/102"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Hangup(id, 0); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"EndpointStateChange", "ChannelCreated", "ChannelDestroyed"} {
		select {
		case ev := <-sub.Events():
			if ev.GetType() != want || ev.GetApplication() != "switchboard-test" {
				t.Fatalf("got %s for %s, want %s", ev.GetType(), ev.GetApplication(), want)
			}
			if ev.GetNode() != DefaultEntityID {
				t.Fatalf("asterisk_id %q", ev.GetNode())
			}
			if cc, ok := ev.(*ariv5.ChannelCreated); ok && time.Since(time.Time(cc.Timestamp)) > time.Minute {
				t.Fatalf("event timestamp not parsed: %v", cc.Timestamp)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s through ari/v5", want)
		}
	}
}
