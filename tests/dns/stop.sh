#!/usr/bin/env bash
# Stop the DNS server tests/dns/start.sh DIR started (its pid file), waiting up to 5 s.
set -euo pipefail
dir=${1:?usage: tests/dns/stop.sh DIR}
[[ -f $dir/pid ]] || exit 0
pid=$(cat "$dir/pid")
kill "$pid" 2>/dev/null || exit 0
for _ in $(seq 50); do
	kill -0 "$pid" 2>/dev/null || exit 0
	sleep 0.1
done
kill -9 "$pid" 2>/dev/null || true
