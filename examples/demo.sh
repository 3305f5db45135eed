#!/bin/sh
# End-to-end demo: start the simulator on a free loopback port, run a first
# script against it, stop the simulator. Usage: demo.sh [path/to/ghlua]
set -eu
GHLUA=${1:-ghlua}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM
"$GHLUA" sim --port 0 --contacts 25 --ready-file "$dir/ready.json" --quiet &
pid=$!
i=0
while [ ! -s "$dir/ready.json" ]; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then echo "demo: the simulator did not start" >&2; exit 1; fi
  kill -0 "$pid" 2>/dev/null || { echo "demo: the simulator exited" >&2; exit 1; }
  sleep 0.1
done
"$GHLUA" "$(dirname "$0")/first.lua" "$dir/ready.json"
