-- Findings already reported whose fix belongs to code another change is
-- making. The driver lets an input pass for `target` when its error
-- contains `match`, or does not run it when `skip(data)` is true (a crash
-- in C cannot be caught), saying so once on stderr, so a run goes on to
-- find the next thing; GHLUA_FUZZ_STRICT=1 ignores this list. `repro`
-- names the reproducer in corpus/TARGET/; `what` says what goes wrong.
-- Remove an entry with its fix: `make fuzz-repro` runs every reproducer
-- with GHLUA_FUZZ_STRICT=1.
return {
  { target = "http", repro = "known-curl-folded-header-uaf",
    what = "heap-use-after-free in libcurl 7.88 (curl#11101, fixed in 8.1.0): a reused easy handle"
      .. " keeps a dangling pointer to the last header, and a response whose first header line is"
      .. " folded (starts with a space or tab) reads it; src/http.c pools easy handles",
    skip = function(data) return data:lower():find("http/[^\n]*\n[ \t]") ~= nil end },
  { target = "http", repro = "known-paginate-repeated-cursor, known-paginate-same-page-forever",
    what = "pagination asks for pages without end while the server repeats itself: a repeated cursor,"
      .. " or the same full page whatever the page number (issue 12, Pagination)",
    match = function(err, data)
      return data:match("^paginate") ~= nil and (err:find("check failed: one call made", 1, true) ~= nil
        or err:find("check failed: pagination yields items without end", 1, true) ~= nil)
    end },
  { target = "http", repro = "known-paginate-empty-reply",
    what = "pagination indexes a reply that is not a JSON object: a 204, a 3xx or an empty 200 makes c:get"
      .. " return true (issue 12, Pagination)",
    match = "attempt to index a boolean value (local 'page')" },
  { target = "http", repro = "known-paginate-searchafter-then-page",
    what = "\"page\" pagination that switched to searchAfter adds 1 to a page number it dropped when a"
      .. " later page's last item has no searchAfter (lua/ghl/paginate.lua STYLES.page)",
    match = "attempt to perform arithmetic on a nil value (field 'page')" },
  { target = "http", repro = "known-ratelimit-interval-1e15",
    what = "X-RateLimit-Interval-Milliseconds: 1e15 with X-RateLimit-Remaining: 0 makes the client wait"
      .. " 31,000 years before its next request (issue 12, Pagination: bound what the server can make the client do)",
    match = function(err, data)
      return err:find("check failed: the client was told to wait", 1, true) ~= nil
        and data:lower():find("x-ratelimit-interval-milliseconds", 1, true) ~= nil
    end },
  { target = "http", repro = "known-hints-message-array-table",
    what = "an error body whose message array holds a table gives a traceback in lua/ghl/hints.lua"
      .. " message_of (issue 12, Errors)",
    match = function(err) return err:find("lua/ghl/hints.lua:%d+: invalid value") ~= nil end },
  { target = "json", repro = "known-hints-message-array-table",
    what = "an error body whose message array holds a table gives a traceback in lua/ghl/hints.lua"
      .. " message_of (issue 12, Errors)",
    match = function(err) return err:find("lua/ghl/hints.lua:%d+: invalid value") ~= nil end },
  { target = "webhook", repro = "known-timestamp-1e30",
    what = "a signed event with a timestamp of 1e30 raises in the receiver's stale/future message"
      .. " (string.format %d of a float) instead of answering (issue 12, Webhooks)",
    match = function(err) return err:find("lua/ghl/webhooks.lua:%d+: bad argument #%d+ to 'format'") ~= nil end },
  { target = "webhook", repro = "known-timestamp-nan",
    what = "a signed event with a NaN timestamp passes the max-age check (issue 12, Webhooks)",
    match = "check failed: accepted an event whose timestamp is not within max_age" },
  { target = "jq", repro = "known-jq-todate-abort, known-jq-input-segv, known-jq-gsub-empty-grows"
      .. " (and leaks: known-jq-compile-leak, known-jq-parser-leak, see flags/jq)",
    what = "libjq 1.6 aborts (date builtins on huge numbers: assertion), reads bad memory (input, inputs:"
      .. " no input callback) or grows without bound (global regex matches of an empty string: gsub, scan,"
      .. " splits, match/test with \"g\"); src/jq.c runs filters in this process",
    skip = function(data)
      local filter = data:match("^[^\n]*")
      for _, word in ipairs { "input", "date", "time", "gsub", "scan", "splits", '"g', ';"' } do
        if filter:find(word, 1, true) then return true end
      end
      return false
    end },
}
