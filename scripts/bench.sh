#!/usr/bin/env bash
# Prints one line per figure the issues ask for. Record the results in
# BENCHMARKS.md with the machine and the date.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version | cut -d' ' -f3) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
# Go micro-benchmarks: every package that has any.
pkgs=$(grep -rl --include='*_test.go' '^func Benchmark' . | xargs -n1 dirname | sort -u)
go test -run '^$' -bench . -benchmem -count 1 $pkgs | grep -E '^Benchmark'
