#!/usr/bin/env bash
# Prints one line per figure the issues ask for. Record the results in
# BENCHMARKS.md with the machine and the date.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version | cut -d' ' -f3) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
# Go micro-benchmarks: every package that has any.
pkgs=$(grep -rl --include='*_test.go' '^func Benchmark' . | xargs -n1 dirname | sort -u)
bench_out=$(mktemp); trap 'rm -f "$bench_out"' EXIT
go test -run '^$' -bench . -benchmem -count 1 $pkgs | tee "$bench_out" | grep -E '^Benchmark'
# Issue 2: licence verify against its floor, from the two lines above (same run).
awk '/^pkg: /{pkg=$2} pkg ~ /\/licensing$/ && $1 ~ /^BenchmarkVerify(-[0-9]+)?$/ {v=$3} pkg ~ /\/licensing$/ && $1 ~ /^BenchmarkEd25519Verify(-[0-9]+)?$/ {e=$3} END {if (v && e) printf "licence verify / bare ed25519.Verify ratio: %.2f\n", v/e; else {print "licence verify / bare ed25519.Verify ratio: benchmark lines missing" > "/dev/stderr"; exit 1}}' "$bench_out"
# Issue 3: durable, verified heartbeats against a fresh registry on loopback,
# each right after the no-op ceiling measured with the same client.
(
  tmp=$(mktemp -d); pids=()
  cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
  trap cleanup EXIT
  go build -o "$tmp/switchboard" ./cmd/switchboard
  sb="$tmp/switchboard"
  "$sb" bench noop-server --listen 127.0.0.1:0 --addr-file "$tmp/noop.addr" >/dev/null & pids+=($!)
  "$sb" registry serve --data "$tmp/reg" --listen 127.0.0.1:0 --log-level warn >/dev/null & pids+=($!)
  for _ in $(seq 100); do [ -s "$tmp/noop.addr" ] && [ -s "$tmp/reg/registry.addr" ] && break; sleep 0.1; done
  dur=${BENCH_DURATION:-10s}
  for batch in 1 100; do
    line=$("$sb" bench heartbeats --registry "http://$(cat "$tmp/noop.addr")" --noop --duration "$dur" --batch "$batch")
    echo "registry no-op ceiling: $line"
    ceiling=$(echo "$line" | sed -n 's/.* reports_per_s=\([0-9.]*\).*/\1/p')
    echo "registry durable+verified: $("$sb" bench heartbeats --data "$tmp/reg" --duration "$dur" --batch "$batch" --ceiling "$ceiling")"
  done
)
# Issue 4: plugin round trip (p50 from the six host benchmarks above, same
# run), the idle agent with its two built-in plugins against the emulators,
# and the outbox drain of a 100,000-report backlog into a real registry.
awk '/^pkg: /{pkg=$2} pkg ~ /\/plugins\/host$/ {for (i=3;i<NF;i++) if ($(i+1)=="p50-µs") {n=$1; sub(/-[0-9]+$/, "", n); v[n]=$i}} END {split("BenchmarkIntegrationDescribe BenchmarkGoPluginMTLSDescribe BenchmarkGoPluginDescribe BenchmarkBareGRPCUnix BenchmarkBareGRPCUnixInProcess BenchmarkInProcessDescribe", k, " "); for (j in k) if (!(k[j] in v)) {print "plugin round trip p50: benchmark line missing: " k[j] > "/dev/stderr"; exit 1}; printf "plugin round trip p50: supervisor (go-plugin+mTLS+deadline+validation) %s µs, plain go-plugin+mTLS %s µs, plain go-plugin %s µs, bare gRPC unix (server in another process) %s µs, bare gRPC unix (in-process server) %s µs, in-process call %s µs\n", v["BenchmarkIntegrationDescribe"], v["BenchmarkGoPluginMTLSDescribe"], v["BenchmarkGoPluginDescribe"], v["BenchmarkBareGRPCUnix"], v["BenchmarkBareGRPCUnixInProcess"], v["BenchmarkInProcessDescribe"]}' "$bench_out"
(
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  go build -o "$tmp/switchboard" ./cmd/switchboard
  go build -o "$tmp/agentbench" ./internal/agentbench/cmd/agentbench
  "$tmp/agentbench" -switchboard "$tmp/switchboard" idle -duration "${BENCH_IDLE:-10s}"
  "$tmp/agentbench" -switchboard "$tmp/switchboard" drain -reports 100000
)
