#!/bin/sh
# End-to-end demo against the simulator, in a private GHLUA_HOME:
#   1. start `ghlua sim` with an OAuth app on a free loopback port
#   2. store the app (`ghlua app add`; the secret comes from the environment)
#   3. `ghlua auth login`: the "browser" (curl following redirects) approves
#      the app and ghlua catches the redirect on loopback
#   4. `ghlua auth status`, then a script that uses the stored token
# Usage: demo.sh [path/to/ghlua]
set -eu
GHLUA=${1:-ghlua}
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM

# A free port for the app's loopback redirect URI.
port=$("$GHLUA" -e 'local s = assert(require("ghl.server").listen{handler=print}); print(s.port); s:close()')
client_id=6740b2b6d9e4a05c1f3a9e21-demoapp1
export GHL_CLIENT_SECRET=demo-secret-not-for-production
export GHLUA_HOME="$dir/home" no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

"$GHLUA" sim --port 0 --contacts 25 --ready-file "$dir/ready.json" --quiet --auto-approve \
  --app "$client_id" --app-secret "$GHL_CLIENT_SECRET" --redirect-uri "http://localhost:$port/callback" &
pid=$!
i=0
while [ ! -s "$dir/ready.json" ]; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then echo "demo: the simulator did not start" >&2; exit 1; fi
  kill -0 "$pid" 2>/dev/null || { echo "demo: the simulator exited" >&2; exit 1; }
  sleep 0.1
done
url=$("$GHLUA" -e "print(require('cjson').decode(io.open('$dir/ready.json'):read('a')).url)")
export GHLUA_API_BASE="$url" GHLUA_MARKETPLACE_BASE="$url"

echo "\$ ghlua app add demo --client-id $client_id --redirect-uri http://localhost:$port/callback --scopes 'contacts custom-fields'"
"$GHLUA" app add demo --client-id "$client_id" --redirect-uri "http://localhost:$port/callback" \
  --scopes "contacts custom-fields"
echo "\$ ghlua auth login --app demo"
BROWSER="curl -sfL -o /dev/null" "$GHLUA" auth login --app demo
echo "\$ ghlua auth status"
"$GHLUA" auth status
echo "\$ ghlua examples/first.lua"
"$GHLUA" "$(dirname "$0")/first.lua"
