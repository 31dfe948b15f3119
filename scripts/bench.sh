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
