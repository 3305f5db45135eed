#!/bin/sh
# `make demo`: README.md's "A first session", run for you in a private
# GHLUA_HOME. The simulator runs in the background (the README's first
# terminal); then the README's second-terminal commands, each shown as it
# runs. The "browser" is curl following redirects (the simulator approves at
# once), and the app's redirect URI is on a free port, since 3000 may be
# taken here (GHLUA_DEMO_PORT picks it).
# Usage: demo.sh [path/to/ghlua]
set -eu
GHLUA=${1:-ghlua}
case $GHLUA in */*) GHLUA=$(cd "$(dirname "$GHLUA")" && pwd)/$(basename "$GHLUA") ;; esac
examples=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM

# `ghlua` on PATH, as the README's commands name it, and a private home.
mkdir "$dir/bin"
ln -s "$(command -v "$GHLUA")" "$dir/bin/ghlua"
export PATH="$dir/bin:$PATH" GHLUA_HOME="$dir/home" BROWSER="curl -sfL -o /dev/null"
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
port=${GHLUA_DEMO_PORT:-$(ghlua -e 'local s = assert(require("ghl.server").listen{handler=print}); print(s.port); s:close()')}

# Show a README command, then run it.
step() {
  printf '$ %s\n' "$1"
  eval "$1"
}

echo "# terminal 1: ghlua sim --auto-approve --contacts 25"
ghlua sim --auto-approve --contacts 25 --quiet --redirect-uri "http://localhost:$port/oauth/callback" \
  >"$dir/sim.log" 2>&1 &
pid=$!
i=0
until grep -q 'in another shell' "$dir/sim.log"; do
  i=$((i + 1))
  if [ "$i" -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
    cat "$dir/sim.log" >&2
    echo "demo: the simulator did not start" >&2
    exit 1
  fi
  sleep 0.05
done
cat "$dir/sim.log"

echo "# terminal 2"
cd "$examples/.."
step 'eval "$(ghlua sim env)"'
step 'ghlua app add myapp --client-id "$GHL_CLIENT_ID" --redirect-uri "$GHL_REDIRECT_URI" --scopes "contacts custom-fields"'
step 'ghlua auth login --app myapp'
step 'ghlua api GET /contacts/ -q limit=5'
step 'ghlua auth status'
step 'ghlua examples/first.lua'
