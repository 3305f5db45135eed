-- ghl.fanout: run a function once per sub-account of an agency.
--   fanout.each_location(fn, {
--     locations = "all" | {id | {id=, name=}, ...}  ("all": every location
--                 where the app is installed, read with the stored agency
--                 (Company) token),
--     concurrency = N (default 4), checkpoint = FILE, app =, company =,
--     dry_run = PLAN (shared by every location's client), progress = bool,
--     client = function(location) -> client (default: ghl.client{location=})
--   }) -> report
-- fn(client, location) runs in a coroutine of ghl.parallel, so the
-- locations' requests overlap. Each location gets its own client: its token
-- is the stored location token, or one minted from the Company token on
-- first use and kept in the store; its throttle is its own (one bucket per
-- app and location), so one busy location never slows the others.
-- The checkpoint is a JSON file rewritten (atomically) as each location
-- finishes; a run given the same file again skips the locations that
-- finished ok, so a run over 300 sub-accounts that was stopped continues
-- where it left off. Locations that failed are run again.
-- The report: {locations = {entry, ...} (in the order given), by_id =
-- {id = entry}, ok = n, failed = n, skipped = n, total = n}, each entry
-- {id, name, ok, error (a ghl.error), result (fn's first value), counts =
-- {requests, writes}, seconds, skipped (finished in an earlier run)}.
-- One location's failure never stops the others. No agency token, or an
-- unreadable checkpoint, raises a ghl.error; a bug in fn is reported as an
-- error entry of kind "error" with its traceback.
local E = require "ghl.error"
local loop = require "ghl.loop"
local sys = require "ghl.sys"
local cjson = require "cjson.safe"

local M = {}

M.CONCURRENCY = 4

-- ---- Checkpoint ----

local function read_checkpoint(path)
  local f = io.open(path, "rb")
  if not f then return { version = 1, locations = {} } end
  local text = f:read("a")
  f:close()
  if text == "" then return { version = 1, locations = {} } end
  local t = cjson.decode(text)
  if type(t) ~= "table" or type(t.locations) ~= "table" then
    E.raise { kind = "checkpoint", message = "the checkpoint " .. path .. " is not a ghlua checkpoint",
              hint = "remove it to start over, or pass another file" }
  end
  return t
end

local function write_checkpoint(path, cp)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then E.raise { kind = "checkpoint", message = "cannot write the checkpoint: " .. tostring(err) } end
  f:write(cjson.encode(cp), "\n")
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then E.raise { kind = "checkpoint", message = "cannot write the checkpoint: " .. tostring(rerr) } end
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

function M.each_location(fn, o)
  if type(fn) ~= "function" then error("each_location: fn must be a function", 2) end
  o = o or {}
  local list, app = o.locations or "all", o.app
  if list == "all" then
    local crow
    list, crow = require("ghl.locations").installed { app = o.app, company = o.company }
    app = app or crow.app
  elseif type(list) ~= "table" then
    error("each_location: locations must be \"all\" or a list", 2)
  else
    list = normalize(list)
  end

  local cp = o.checkpoint and read_checkpoint(o.checkpoint)
  local report = { locations = {}, by_id = {}, ok = 0, failed = 0, skipped = 0, total = #list }
  local todo = {}
  for i, loc in ipairs(list) do
    local entry = { id = loc.id, name = loc.name, counts = { requests = 0, writes = 0 } }
    report.locations[i], report.by_id[loc.id] = entry, entry
    local done = cp and cp.locations[loc.id]
    if done and done.ok then
      entry.ok, entry.skipped, entry.result = true, true, done.result
      report.ok, report.skipped = report.ok + 1, report.skipped + 1
    else
      todo[#todo + 1] = { loc = loc, entry = entry }
    end
  end

  local make = o.client or function(loc)
    return require("ghl.client").new { location = loc.id, app = app, dry_run = o.dry_run }
  end
  local fns = {}
  for i, t in ipairs(todo) do
    fns[i] = function()
      local entry, loc = t.entry, t.loc
      local t0 = sys.now()
      local ok, res = xpcall(function()
        local c = counting(make(loc), entry.counts)
        return fn(c, loc)
      end, handler)
      entry.seconds = sys.now() - t0
      if ok then
        entry.ok, entry.result = true, res
        report.ok = report.ok + 1
      else
        entry.ok, entry.error = false, res
        report.failed = report.failed + 1
      end
      if cp then
        local result = entry.result
        if type(result) == "function" or type(result) == "userdata" or type(result) == "thread" then result = nil end
        if type(result) == "table" and not cjson.encode(result) then result = nil end
        cp.locations[loc.id] = { ok = entry.ok, at = os.time(), counts = entry.counts, result = result,
          error = not ok and tostring(res.message or res) or nil }
        write_checkpoint(o.checkpoint, cp)
      end
      return true
    end
  end
  if #fns > 0 then
    local results = loop.run(fns, { concurrency = o.concurrency or M.CONCURRENCY, progress = o.progress })
    for _, r in ipairs(results) do
      if r ~= true and E.is(r) and r.kind == "interrupted" then error(r, 0) end
    end
  end
  return report
end

-- summary(report) -> lines describing it, one per location and a total.
function M.summary(report)
  local lines = {}
  for _, e in ipairs(report.locations) do
    local what
    if e.skipped then what = "ok (done in an earlier run)"
    elseif e.ok then what = ("ok   %d requests, %d writes, %.1fs"):format(e.counts.requests, e.counts.writes, e.seconds or 0)
    else what = "FAILED " .. tostring(E.is(e.error) and E.tostring(e.error) or e.error) end
    lines[#lines + 1] = ("%-22s %-24s %s"):format(e.id, (e.name or ""):sub(1, 24), what)
  end
  lines[#lines + 1] = ("%d locations: %d ok, %d failed%s"):format(report.total, report.ok, report.failed,
    report.skipped > 0 and (", " .. report.skipped .. " skipped (checkpoint)") or "")
  return lines
end

return M
