-- ghl.fanout: run a function once per sub-account of an agency.
--   fanout.each_location(fn, {
--     locations = "all" | {id | {id=, name=}, ...}  ("all": every location
--                 /oauth/installedLocations lists for the stored agency
--                 (Company) token: ghl.locations.installed),
--     concurrency = N (default M.CONCURRENCY), checkpoint = FILE,
--     job = TEXT (what the run does, kept in the checkpoint: a checkpoint
--           written for another job is refused), app =, company =,
--     dry_run = PLAN (shared by every location's client), progress = bool,
--     schema_cache = "memory" | "store" (each location's client's: ghl.client),
--     client = function(location) -> client (default: ghl.client{location=}),
--     on_done = function(entry, report) (each location as it finishes, in
--               completion order; skipped ones first, before any runs)
--   }) -> report
-- fn(client, location) runs in a coroutine of ghl.parallel, so the
-- locations' requests overlap. Each location gets its own client, and its
-- token is got before fn runs: the stored location token (refreshed when
-- it is near expiry), or one minted from the Company token and stored, so
-- a token that is stored and valid is never minted again, in this run or
-- the next. Every mint and installedLocations page is throttled in the
-- Company's rate-limit bucket (100 requests per 10 s at HighLevel), each
-- location's calls in its own bucket, and requests waiting for a bucket
-- queue in order (ghl.client): 300 locations get through in the time the
-- Company's limit allows, with no 429.
-- With locations = "all", a location /oauth/installedLocations reports as
-- not installed is skipped ("not installed") without a request: HighLevel
-- mints no token for it. In a list given by the caller such a location is
-- tried last, and skipped, not failed, when HighLevel refuses its token.
-- The checkpoint is a journal: a header line, then one JSON line appended
-- (and flushed) as each location finishes; a run given the same file skips
-- the locations that finished ok, so a run over 300 sub-accounts that was
-- stopped (Ctrl-C, kill) continues where it left off, and the tokens the
-- stopped run minted are in the store (each is saved as its answer comes):
-- nothing is minted twice, but for a mint whose answer was still on its
-- way when the process stopped (HighLevel made that token; the run never
-- saw it). Locations that failed are run again. A torn last line (a process killed while
-- writing it) is ignored; the file is rewritten compactly when a run
-- starts. The single-object checkpoints of earlier versions are read too.
-- The report: {locations = {entry, ...} (in the order given), by_id =
-- {id = entry}, ok = n, failed = n, skipped = n, not_installed = n, total
-- = n, seconds = wall time}, each entry {id, name, ok, error (a
-- ghl.error), result (fn's first value), counts = {requests, writes},
-- seconds, skipped (true: done in an earlier run, or not installed),
-- reason (why it was skipped), done (its place in completion order)}.
-- One location's failure never stops the others. No agency token, or an
-- unreadable checkpoint, raises a ghl.error; a bug in fn is reported as an
-- error entry of kind "error" with its traceback. A run stopped by Ctrl-C
-- raises kind "interrupted" with the partial report as err.report.
--   fanout.current() -> the entry of the location whose coroutine is
--   running (nil elsewhere): where a location's output can be collected.
--   fanout.header(entry, report), fanout.summary(report): lines for people.
local E = require "ghl.error"
local loop = require "ghl.loop"
local sys = require "ghl.sys"
local json = require "ghl.json"
local util = require "ghl.util"

local M = {}

-- Locations at a time. The Company bucket lets 100 mints through per 10 s
-- and each location then makes its few calls in its own bucket; to keep
-- the Company bucket busy while locations wait on the network (a few
-- hundred ms per call at HighLevel), about 10 locations must finish per
-- second: 32 at a time covers up to ~3 s of calls per location, and stays
-- a modest number of connections.
M.CONCURRENCY = 32

-- ---- Checkpoint ----

local MAGIC = "ghlua each_location checkpoint"

local function not_ours(path, why)
  E.raise { kind = "checkpoint", message = ("the checkpoint %s is not a ghlua checkpoint (%s)"):format(path, why),
            hint = "remove it to start over, or pass another file" }
end

-- read_checkpoint(path) -> {job =, locations = {id = record}}; a missing or
-- empty file is an empty checkpoint.
local function read_checkpoint(path)
  local text = util.slurp(path)
  if not text or text:match("^%s*$") then return { locations = {} } end
  local whole = json.decode(text)
  if type(whole) == "table" and type(whole.locations) == "table" then   -- the earlier single-object form
    return { locations = whole.locations }
  end
  local cp = { locations = {} }
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  local torn = text:sub(-1) ~= "\n"
  for i, line in ipairs(lines) do
    local rec = json.decode(line)
    if type(rec) ~= "table" then
      if i == #lines and torn and i > 1 then break end   -- cut short by a kill
      not_ours(path, "line " .. i .. " is not JSON")
    end
    if i == 1 then
      if rec.checkpoint ~= MAGIC then not_ours(path, "no checkpoint header") end
      cp.job = rec.job
    elseif type(rec.id) == "string" then
      cp.locations[rec.id] = rec
    end
  end
  return cp
end

local function cannot_write(err)
  E.raise { kind = "checkpoint", message = "cannot write the checkpoint: " .. tostring(err),
            hint = { lua = "pass checkpoint = a file in a directory that exists and is writable",
                     cli = "pass a --checkpoint file in a directory that exists and is writable" } }
end

-- Rewrite the checkpoint compactly (atomically) and open it for appending.
local function open_checkpoint(path, cp)
  local lines = { json.encode { checkpoint = MAGIC, version = 2, job = cp.job } }
  for _, rec in pairs(cp.locations) do lines[#lines + 1] = json.encode(rec) or "{}" end
  lines[#lines + 1] = ""
  local ok, err = util.write_atomic(path, table.concat(lines, "\n"))
  if not ok then cannot_write(err) end
  local a, aerr = io.open(path, "ab")
  if not a then cannot_write(aerr) end
  return a
end

-- A result the checkpoint can keep (plain JSON data), or nil.
local function keepable(result)
  local t = type(result)
  if t == "function" or t == "userdata" or t == "thread" then return nil end
  if t == "table" and not json.encode(result) then return nil end
  return result
end

-- ---- Locations ----

local function normalize(list)
  local out = {}
  for i, l in ipairs(list) do
    if type(l) == "string" then
      out[i] = { id = l }
    elseif type(l) == "table" and (l.id or l._id) then
      local t = {}
      for k, v in pairs(l) do t[k] = v end
      t.id = l.id or l._id
      out[i] = t
    else
      error("locations[" .. i .. "] must be an id or a table with id", 3)
    end
  end
  return out
end

-- Count a client's requests (and writes) into counts.
local function counting(c, counts)
  local client_mod = require "ghl.client"
  local ops = require "ghl.api.ops"
  local real = c.request
  c.request = function(self, method, path, ropts)
    counts.requests = counts.requests + 1
    local m = method:upper()
    if not client_mod.is_read(m, ops.match(m, (path:gsub("%?.*", ""))), ropts) then
      counts.writes = counts.writes + 1
    end
    return real(self, method, path, ropts)
  end
  return c
end

local function handler(e)
  if E.is(e) then return e end
  return E.new { kind = "error", message = tostring(e), traceback = debug.traceback(tostring(e), 2) }
end

-- HighLevel's refusal to mint a token for a location (400/403/404/422 from
-- /oauth/locationToken): for a location listed as not installed, that is
-- the answer to expect, not a failure.
local function refused_mint(err)
  return E.is(err) and err.where == "oauth.location_token" and err.kind == "oauth"
    and (err.status == 400 or err.status == 403 or err.status == 404 or err.status == 422)
end

local running = setmetatable({}, { __mode = "k" })   -- coroutine -> entry

function M.current()
  return running[coroutine.running()]
end

function M.each_location(fn, o)
  if type(fn) ~= "function" then error("each_location: fn must be a function", 2) end
  o = o or {}
  local cp, cpf
  if o.checkpoint then
    cp = read_checkpoint(o.checkpoint)
    if cp.job and o.job and cp.job ~= o.job then
      E.raise { kind = "checkpoint",
        message = ("the checkpoint %s belongs to another run (%s), not this one (%s)"):format(o.checkpoint, cp.job, o.job),
        hint = "pass another checkpoint file, or remove it to start over" }
    end
    cp.job = cp.job or o.job
  end
  local t0 = sys.now()
  local list, app = o.locations or "all", o.app
  local listed = list == "all"   -- HighLevel's own list: its installed flags are the truth
  if list == "all" then
    local crow
    list, crow = require("ghl.locations").installed { app = o.app, company = o.company }
    app = app or crow.app
  elseif type(list) ~= "table" then
    error("each_location: locations must be \"all\" or a list", 2)
  else
    list = normalize(list)
  end

  local report = { locations = {}, by_id = {}, ok = 0, failed = 0, skipped = 0, not_installed = 0, total = #list }
  local todo, later, done = {}, {}, 0
  local on_done = o.on_done
  local function finished(entry)
    done = done + 1
    entry.done = done
    if on_done then on_done(entry, report) end
  end
  for i, loc in ipairs(list) do
    local entry = { id = loc.id, name = loc.name, counts = { requests = 0, writes = 0 } }
    report.locations[i], report.by_id[loc.id] = entry, entry
    local rec = cp and cp.locations[loc.id]
    if rec and rec.ok then
      entry.ok, entry.skipped, entry.reason, entry.result = true, true, "done in an earlier run", rec.result
      if type(rec.counts) == "table" then entry.counts = rec.counts end
      report.ok, report.skipped = report.ok + 1, report.skipped + 1
    elseif loc.installed == false and listed then
      entry.ok, entry.skipped, entry.reason = false, true, "not installed"
      report.skipped, report.not_installed = report.skipped + 1, report.not_installed + 1
    elseif loc.installed == false then
      later[#later + 1] = { loc = loc, entry = entry }
    else
      todo[#todo + 1] = { loc = loc, entry = entry }
    end
  end
  for _, t in ipairs(later) do todo[#todo + 1] = t end
  for _, e in ipairs(report.locations) do
    if e.skipped then finished(e) end
  end
  if cp then cpf = open_checkpoint(o.checkpoint, cp) end
  local _ <close> = setmetatable({}, { __close = function() if cpf then cpf:close() end end })

  local make = o.client or function(loc)
    return require("ghl.client").new { location = loc.id, app = app, dry_run = o.dry_run, schema_cache = o.schema_cache }
  end
  local fns = {}
  for i, t in ipairs(todo) do
    fns[i] = function()
      local entry, loc = t.entry, t.loc
      running[coroutine.running()] = entry
      local t1 = sys.now()
      local ok, how, res = xpcall(function()
        local c = make(loc)
        if not o.client then
          -- the token first: the stored one (refreshed near expiry), or one
          -- minted from the Company token and stored at once
          local got, terr = pcall(c.token, c)
          if not got then
            if loc.installed == false and refused_mint(terr) then return "not installed", terr end
            error(terr, 0)
          end
        end
        return "ran", (fn(counting(c, entry.counts), loc))
      end, handler)
      entry.seconds = sys.now() - t1
      if not ok then
        entry.ok, entry.error = false, how
      elseif how == "not installed" then
        entry.ok, entry.skipped = false, true
        entry.reason = "not installed (" .. tostring(res.message) .. ")"
      else
        entry.ok, entry.result = true, res
      end
      return t
    end
  end
  -- as each location finishes (in the main thread): count it, journal it,
  -- tell on_done; Ctrl-C inside a location stops the whole run
  local function each(_, t)
    if not (type(t) == "table" and t.entry) then error(t, 0) end   -- the task itself broke
    local entry = t.entry
    if entry.ok then
      report.ok = report.ok + 1
    elseif entry.skipped then
      report.skipped, report.not_installed = report.skipped + 1, report.not_installed + 1
    else
      report.failed = report.failed + 1
      if E.is(entry.error) and entry.error.kind == "interrupted" then error(entry.error, 0) end
    end
    if cpf and not entry.skipped then
      local rec = { id = entry.id, ok = entry.ok, at = os.time(), counts = entry.counts,
        result = entry.ok and keepable(entry.result) or nil,
        error = entry.error and (E.is(entry.error) and E.tostring(entry.error) or tostring(entry.error)) or nil }
      local line = json.encode(rec)
      if not line then rec.result = nil; line = json.encode(rec) end
      local wok, werr = cpf:write(line, "\n")
      if wok then wok, werr = cpf:flush() end
      if not wok then
        E.raise { kind = "checkpoint", message = "cannot write the checkpoint: " .. tostring(werr),
                  hint = "the run stopped so as not to lose track of what it did; free the disk and run it again" }
      end
    end
    finished(entry)
  end
  if #fns > 0 then
    local ok, err = pcall(loop.run, fns, { concurrency = o.concurrency or M.CONCURRENCY,
                                           progress = o.progress, each = each })
    if not ok then
      report.seconds = sys.now() - t0
      if E.is(err) then err.report = report end
      error(err, 0)
    end
  end
  report.seconds = sys.now() - t0
  return report
end

-- header(entry, report) -> the line that heads a location's output:
-- "== [12/300] Name (id): ok, 3 requests, 0.42s".
function M.header(e, report)
  local what
  if e.skipped then what = "skipped, " .. (e.reason or "")
  elseif e.ok then
    what = ("ok, %d request%s%s, %.2fs"):format(e.counts.requests, e.counts.requests == 1 and "" or "s",
      e.counts.writes > 0 and (", %d write%s"):format(e.counts.writes, e.counts.writes == 1 and "" or "s") or "",
      e.seconds or 0)
  else
    what = ("FAILED after %.2fs: %s"):format(e.seconds or 0, E.is(e.error) and E.tostring(e.error) or tostring(e.error))
  end
  local name = e.name and e.name ~= "" and (E.sanitize(e.name) .. " (" .. E.sanitize(e.id) .. ")") or E.sanitize(e.id)
  return ("== [%d/%d] %s: %s"):format(e.done or 0, report.total, name, what)
end

-- summary(report) -> lines: the locations that failed (one line each) and
-- the totals with the time taken.
function M.summary(report)
  local lines = {}
  local failed = {}
  for _, e in ipairs(report.locations) do
    if e.ok == false and not e.skipped then failed[#failed + 1] = e end
  end
  if #failed > 0 then
    lines[#lines + 1] = ("failed (%d):"):format(#failed)
    for _, e in ipairs(failed) do
      lines[#lines + 1] = ("  %s %s: %s"):format(E.sanitize(e.id), e.name and ("(" .. E.sanitize(e.name) .. ")") or "",
        E.is(e.error) and E.tostring(e.error) or tostring(e.error))
    end
  end
  local earlier = report.skipped - (report.not_installed or 0)
  local why = {}
  if earlier > 0 then why[#why + 1] = earlier .. " done in an earlier run" end
  if (report.not_installed or 0) > 0 then why[#why + 1] = report.not_installed .. " not installed" end
  lines[#lines + 1] = ("%d location%s in %s: %d ok, %d failed, %d skipped%s"):format(report.total,
    report.total == 1 and "" or "s", M.duration(report.seconds or 0), report.ok - earlier, report.failed,
    report.skipped, #why > 0 and (" (" .. table.concat(why, ", ") .. ")") or "")
  return lines
end

-- duration(seconds) -> "0.42s", "31.4s", "2m05s", "1h02m".
function M.duration(s)
  if s < 10 then return ("%.2fs"):format(s) end
  if s < 60 then return ("%.1fs"):format(s) end
  if s < 3600 then return ("%dm%02ds"):format(s // 60, math.floor(s % 60)) end
  return ("%dh%02dm"):format(s // 3600, math.floor(s % 3600) // 60)
end

return M
