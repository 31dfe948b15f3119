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
# each run right after a no-op ceiling run with the same client. Both share
# the two cores with the load generator, and a ceiling moves by a quarter
# from one run to the next on such a machine, so the runs alternate
# (BENCH_PAIRS pairs, default 5 unbatched and 3 with --batch 100) and the
# summary line gives the medians and the median of the pairs' ratios. The
# 200 simulated installs send at once, each on its own connection, as
# agents do; the unbatched series runs again with 64 of them at a time (the
# setting before 2026-12-07), for comparison.
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
  median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
  field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
  for series in 1:0 1:64 100:0; do
    batch=${series%:*} conc=${series#*:}
    pairs=${BENCH_PAIRS:-$([ "$batch" = 1 ] && echo 5 || echo 3)}
    ceilings=(); durables=(); ratios=()
    for i in $(seq "$pairs"); do
      line=$("$sb" bench heartbeats --registry "http://$(cat "$tmp/noop.addr")" --noop --duration "$dur" --batch "$batch" --concurrency "$conc")
      echo "registry no-op ceiling ($i/$pairs): $line"
      ceiling=$(echo "$line" | field reports_per_s)
      line=$("$sb" bench heartbeats --data "$tmp/reg" --duration "$dur" --batch "$batch" --concurrency "$conc" --ceiling "$ceiling")
      echo "registry durable+verified ($i/$pairs): $line"
      ceilings+=("$ceiling"); durables+=("$(echo "$line" | field reports_per_s)"); ratios+=("$(echo "$line" | field ceiling_ratio)")
    done
    printf 'registry batch=%s concurrency=%s, median of %s pairs: no-op ceiling %.0f reports/s, durable+verified %.0f reports/s, ceiling ratio %s (pairs: %s)\n' \
      "$batch" "$([ "$conc" = 0 ] && echo "every install" || echo "$conc")" "$pairs" "$(printf '%s\n' "${ceilings[@]}" | median)" "$(printf '%s\n' "${durables[@]}" | median)" \
      "$(printf '%s\n' "${ratios[@]}" | median)" "${ratios[*]}"
  done
)
# Issue 4: plugin round trip. The six host benchmarks run five more times
# on their own: a p50 on a shared two-core machine moves by tens of µs from
# one run to the next, so the line gives the median of the six p50s of each
# (and their range for the supervisor path). Then the idle agent with its two
# built-in plugins against the emulators, and the outbox drain of a
# 100,000-report backlog into a real registry.
go test -run '^$' -bench 'Describe$|BareGRPCUnix' -count 5 ./plugins/host/ | tee -a "$bench_out" | grep -E '^Benchmark' >/dev/null
awk '/^pkg: /{pkg=$2} pkg ~ /\/plugins\/host$/ {for (i=3;i<NF;i++) if ($(i+1)=="p50-µs") {n=$1; sub(/-[0-9]+$/, "", n); v[n]=v[n] " " $i}}
  function median(s,   a, n, i, j, t) { n=split(s, a, " "); for (i=2;i<=n;i++) for (j=i;j>1 && a[j-1]+0>a[j]+0;j--) {t=a[j]; a[j]=a[j-1]; a[j-1]=t}; return n%2 ? a[(n+1)/2] : (a[n/2]+a[n/2+1])/2 }
  function range(s,   a, n, i, lo, hi) { n=split(s, a, " "); lo=a[1]; hi=a[1]; for (i=2;i<=n;i++) {if (a[i]+0<lo+0) lo=a[i]; if (a[i]+0>hi+0) hi=a[i]}; return lo "–" hi }
  END {split("BenchmarkIntegrationDescribe BenchmarkGoPluginMTLSDescribe BenchmarkGoPluginDescribe BenchmarkBareGRPCUnix BenchmarkBareGRPCUnixInProcess BenchmarkInProcessDescribe", k, " "); for (j in k) if (!(k[j] in v)) {print "plugin round trip p50: benchmark line missing: " k[j] > "/dev/stderr"; exit 1}
  printf "plugin round trip p50, median of %d runs: supervisor (go-plugin+mTLS+deadline+validation) %s µs (runs %s), plain go-plugin+mTLS %s µs, plain go-plugin %s µs, bare gRPC unix (server in another process) %s µs, bare gRPC unix (in-process server) %s µs, in-process call %s µs\n", split(v["BenchmarkIntegrationDescribe"], tmp, " "), median(v["BenchmarkIntegrationDescribe"]), range(v["BenchmarkIntegrationDescribe"]), median(v["BenchmarkGoPluginMTLSDescribe"]), median(v["BenchmarkGoPluginDescribe"]), median(v["BenchmarkBareGRPCUnix"]), median(v["BenchmarkBareGRPCUnixInProcess"]), median(v["BenchmarkInProcessDescribe"])}' "$bench_out"
(
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  go build -o "$tmp/switchboard" ./cmd/switchboard
  go build -o "$tmp/agentbench" ./internal/agentbench/cmd/agentbench
  "$tmp/agentbench" -switchboard "$tmp/switchboard" idle -duration "${BENCH_IDLE:-10s}"
  "$tmp/agentbench" -switchboard "$tmp/switchboard" drain -reports 100000
)
