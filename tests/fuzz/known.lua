-- Findings already reported whose fix belongs to code another change is
-- making. The driver lets an input pass for `target` when its error
-- contains `match`, or does not run it when `skip(data)` is true (a crash
-- in C cannot be caught), saying so once on stderr, so a run goes on to
-- find the next thing; GHLUA_FUZZ_STRICT=1 ignores this list. `repro`
-- names the reproducer in corpus/TARGET/; `what` says what goes wrong.
-- Remove an entry with its fix: `make fuzz-repro` runs every reproducer
-- with GHLUA_FUZZ_STRICT=1.
return {
  { target = "jq", repro = "known-jq-parser-leak",
    what = "libjq 1.6 leaks inside its own parser on an object key that is not a string; jq.format"
      .. " parses in this process (filters run in a worker, whose leaks end with it): flags/jq turns"
      .. " leak detection off for this target",
    match = function() return false end },
}
