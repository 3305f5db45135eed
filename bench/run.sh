#!/bin/sh
# `make bench`: every benchmark in bench/, against loopback servers only.
# Usage: bench/run.sh path/to/ghlua
set -eu
GHLUA=${1:-build/ghlua}
cd "$(dirname "$0")/.."
echo "## Token refresh (bench/refresh.lua)"
"$GHLUA" bench/refresh.lua 5
