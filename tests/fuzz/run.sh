#!/bin/sh
# Run the fuzz targets built in BUILD (cmake -DGHLUA_FUZZ=ON).
#   tests/fuzz/run.sh BUILD SECONDS [TARGET...]   fuzz each target for SECONDS
#   tests/fuzz/run.sh --repro BUILD [TARGET...]   run every reproducer once
# A run starts from the seeds and reproducers of tests/fuzz/corpus/TARGET
# and the units earlier runs found (BUILD/fuzz/corpus/TARGET, where new
# units go; the repository's corpus is never written). A finding is saved
# as BUILD/fuzz/artifacts/TARGET/crash-* (or timeout-*, oom-*, leak-*) and
# fails the run; the log is BUILD/fuzz/logs/TARGET.log. One line per
# target sums up: inputs run, speed, C coverage (libFuzzer's cov: edges of
# the instrumented C code; ft: features, which count Lua line edges too),
# corpus size. tests/fuzz/flags/TARGET, when there is one, holds more
# libFuzzer flags (lines starting with -) and environment settings
# (NAME=value lines) for that target. FUZZ_SEED=N fixes libFuzzer's seed,
# so a short run (make test) mutates in the same order every time.
# --repro runs each repro-* file (fixed findings: must pass) and each
# known-* file (known.lua names them; they must still fail without the
# list) with GHLUA_FUZZ_STRICT=1, and says which known findings are fixed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repro=0
if [ "${1:-}" = --repro ]; then repro=1; shift; fi
build=${1:?usage: run.sh BUILD SECONDS [TARGET...] | run.sh --repro BUILD [TARGET...]}
shift
if [ $repro -eq 0 ]; then seconds=${1:?usage: run.sh BUILD SECONDS [TARGET...]}; shift; fi
targets="$*"
[ -n "$targets" ] || targets=$(cd "$here/targets" && ls *.lua | sed 's/\.lua$//')
out="$build/fuzz"
mkdir -p "$out/logs"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=""

if [ $repro -eq 1 ]; then
  for t in $targets; do
    for f in "$here/corpus/$t"/repro-* "$here/corpus/$t"/known-*; do
      [ -f "$f" ] || continue
      name=$(basename "$f")
      if GHLUA_FUZZ_STRICT=1 "$build/fuzz_$t" "$f" >"$out/logs/$t-$name.log" 2>&1; then
        case $name in
          known-*) echo "$t/$name: passes now: remove its entry from tests/fuzz/known.lua, rename it repro-*" ;;
          *) echo "$t/$name: ok" ;;
        esac
      else
        case $name in
          known-*) echo "$t/$name: still fails (known)" ;;
          *) echo "$t/$name: FAILS again, see $out/logs/$t-$name.log"; failed="$failed $t/$name" ;;
        esac
      fi
    done
  done
  [ -z "$failed" ] || { echo "reproducers failing:$failed"; exit 1; }
  exit 0
fi

for t in $targets; do
  bin="$build/fuzz_$t"
  [ -x "$bin" ] || { echo "$t: no $bin; build with make fuzz-build"; failed="$failed $t"; continue; }
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  dict=""
  [ -f "$here/dict/$t.dict" ] && dict="-dict=$here/dict/$t.dict"
  flags="" vars=""
  if [ -f "$here/flags/$t" ]; then
    flags=$(grep '^-' "$here/flags/$t")
    vars=$(grep '^[A-Z_]*=' "$here/flags/$t")
  fi
  log="$out/logs/$t.log"
  # shellcheck disable=SC2086
  env $vars "$bin" -max_total_time="$seconds" ${FUZZ_SEED:+-seed=$FUZZ_SEED} -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$t/" $dict $flags "$out/corpus/$t" "$here/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
  if [ $rc -eq 0 ]; then
    printf '%-8s ok       %9s inputs %6s/s  cov %5s  ft %6s  corpus %5s\n' "$t" "${execs:-?}" "${speed:-?}" \
      "${cov:-?}" "${ft:-?}" "${corp:-?}"
  else
    art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    printf '%-8s FINDING  after %s inputs: %s (log %s)\n' "$t" "${execs:-?}" "${art:-no artifact}" "$log"
    grep -E '==ghlua-fuzz== finding|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$log" | head -n 3
    failed="$failed $t"
  fi
done
[ -z "$failed" ] || { echo "fuzz findings in:$failed"; exit 1; }
