#!/bin/sh
# Coverage a corpus reaches, and what the Lua line counters add:
#   tests/fuzz/coverage.sh BUILD TARGET DIR...
#     replays the inputs of DIR... once and prints the C edges libFuzzer
#     saw (cov) and the lines of lua/ run (Lua lines)
#   tests/fuzz/coverage.sh --compare BUILD SECONDS TARGET...
#     fuzzes each target twice from its seeds for SECONDS, with the Lua
#     line counters (GHLUA_FUZZ_LUA_COVERAGE=1) and without (=0), into
#     fresh corpora under BUILD/fuzz/compare, and prints the coverage of
#     both corpora, replayed the same way
set -u
here=$(cd "$(dirname "$0")" && pwd)

# replay BUILD TARGET DIR... -> "cov N lua M"
replay() {
  b=$1 t=$2
  shift 2
  lines=$(mktemp)
  flags="" vars=""
  if [ -f "$here/flags/$t" ]; then
    flags=$(grep '^-' "$here/flags/$t")
    vars=$(grep '^[A-Z_]*=' "$here/flags/$t")
  fi
  # shellcheck disable=SC2086
  cov=$(env $vars GHLUA_FUZZ_LINES="$lines" "$b/fuzz_$t" $flags -runs=0 -artifact_prefix="$lines." "$@" 2>&1 |
    sed -n 's/^#[0-9]*[[:space:]]*INITED cov: \([0-9]*\).*/\1/p' | tail -n 1)
  lua=$(grep -c '^lua/' "$lines")
  rm -f "$lines" "$lines".*
  echo "cov ${cov:-?} lua $lua"
}

if [ "${1:-}" != --compare ]; then
  build=${1:?usage: coverage.sh BUILD TARGET DIR... | coverage.sh --compare BUILD SECONDS TARGET...}
  target=${2:?target}
  shift 2
  echo "$target: $(replay "$build" "$target" "$@")"
  exit 0
fi

shift
build=${1:?build} seconds=${2:?seconds}
shift 2
for t in "$@"; do
  for mode in 1 0; do
    dir="$build/fuzz/compare/$t-lua$mode"
    rm -rf "$dir" && mkdir -p "$dir"
    dict=""
    [ -f "$here/dict/$t.dict" ] && dict="-dict=$here/dict/$t.dict"
    flags="" vars=""
    if [ -f "$here/flags/$t" ]; then
      flags=$(grep '^-' "$here/flags/$t")
      vars=$(grep '^[A-Z_]*=' "$here/flags/$t")
    fi
    # shellcheck disable=SC2086
    env $vars GHLUA_FUZZ_LUA_COVERAGE=$mode "$build/fuzz_$t" -max_total_time="$seconds" -timeout=20 \
      $dict $flags -artifact_prefix="$dir.crash-" -print_final_stats=1 "$dir" "$here/corpus/$t" >"$dir.log" 2>&1
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir.log")
    echo "$t counters=$mode: ${execs:-?} inputs, corpus $(ls "$dir" | wc -l), $(replay "$build" "$t" "$dir" "$here/corpus/$t")"
  done
done
