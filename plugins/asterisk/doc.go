// Package asterisk is the Asterisk Integration plugin: it reads an Asterisk
// PBX over ARI (the Asterisk REST Interface) and reports its version, build
// and system information, endpoints by technology and state, live channel
// count and uptime, and one seat count: pbx_endpoints.
//
// # Seats
//
// pbx_endpoints is the number of endpoints Asterisk has configured (every
// endpoint GET /ari/endpoints lists, whatever its state). Configured rather
// than online endpoints, because a seat is an extension the customer set up
// and pays for: counting registered phones would make the figure swing with
// phones switched off at night or a trunk flapping, and billing would follow
// the clock. ARI cannot tell a phone from a trunk, so trunks count too; the
// per-technology and per-state counts go into Details so support can see
// what the number is made of.
//
// # The ARI client library
//
// The adapter uses github.com/CyCoreSystems/ari/v5 for ARI's data model (the
// AsteriskInfo, EndpointData and ChannelData types, Asterisk's timestamp
// format, the event types and their decoder), but not its client/native
// transport, whose sharp edges (v5.3.1) cannot all be covered from outside:
//
//   - native.Connect blocks until the websocket is up and retries every
//     second forever while Asterisk is unreachable. Here every connection
//     attempt runs under its own deadline (connect_timeout) and retries back
//     off exponentially with jitter (backoff_initial … backoff_max).
//   - its REST calls use a zero http.Client (no timeout) and take no
//     context, so a stalled Asterisk hangs the caller forever. Here every
//     call carries the caller's context and an http.Client with a timeout
//     (request_timeout).
//   - the websocket has no keepalive: a dead link is never noticed. Here
//     GET /ari/asterisk/ping runs every ping_interval; a failed ping tears
//     the connection down and rebuilds it (TCP keepalive covers the socket
//     itself).
//   - the default websocket URL is ws://localhost:8088/ari/events whatever
//     URL was given. Here ws_url is derived from ari_url when not set.
//   - its websocket reader hands the result of ari.DecodeEvent to the event
//     bus even when decoding failed, and an event type the library does not
//     know (ChannelTransfer, ChannelToneDetected … sent by Asterisk
//     20.15+/22.5+) decodes to nil and panics in a goroutine no caller can
//     recover. Here the adapter reads the websocket itself, asks Asterisk to
//     send only the event types it uses (PUT eventFilter), and decodes with
//     DecodeEvent, which hands only known types to the library and ignores
//     the rest.
//   - Client.Close races with its own reconnect loop (a data race), so a
//     native client cannot be rebuilt safely. Here a session is a plain
//     websocket plus an HTTP client, torn down and rebuilt at will.
package asterisk
