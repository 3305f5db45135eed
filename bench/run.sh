#!/bin/sh
# `make bench`: every benchmark in bench/, against loopback servers only.
# Usage: bench/run.sh path/to/ghlua
# The API-client benchmark needs nginx, hyperfine and /usr/bin/time
# (`sh .ci/deps bench`); the Node SDK it compares with is installed here on
# demand (npm ci into bench/node/node_modules, not committed), and skipped
# with a note when npm cannot install it.
set -eu
GHLUA=${1:-build/ghlua}
cd "$(dirname "$0")/.."
echo "## Token refresh (bench/refresh.lua)"
"$GHLUA" bench/refresh.lua 5
echo
echo "## Recipe sandbox boundary (bench/sandbox.lua)"
"$GHLUA" bench/sandbox.lua 1000 5
echo
echo "## jq filters in a worker process (bench/jq.lua; --base OLD_GHLUA compares)"
"$GHLUA" bench/jq.lua --rounds 3
echo
echo "## Writes never sent twice (bench/writes.lua)"
"$GHLUA" bench/writes.lua 500 7
echo
echo "## Agency fan-out, 300 locations at 100 requests per 10 s (bench/fanout.lua)"
"$GHLUA" bench/fanout.lua --runs 3
echo
echo "## API client (bench/api.lua)"
echo
if [ ! -f bench/node/node_modules/@gohighlevel/api-client/package.json ]; then
  if ! (cd bench/node && npm ci --no-audit --no-fund --loglevel=error >&2); then
    echo "bench: npm ci failed in bench/node; the Node SDK rows are skipped" >&2
  fi
fi
"$GHLUA" bench/api.lua
