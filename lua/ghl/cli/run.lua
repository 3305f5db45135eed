-- `ghlua run RECIPE`: run a recipe (ghl.recipe) with its parameters and a
-- client, sandboxed unless --trust. It validates the parameters, checks the
-- stored token's granted scopes against the manifest (naming what is
-- missing; a GHL_TOKEN or a PIT has no recorded grant and is not checked),
-- and then:
--   --dry-run  runs it with reads sent and writes recorded, and prints the
--              plan (method, path, body; secrets redacted);
--   a recipe whose manifest says writes = true, without --yes: runs it dry
--              first, shows the plan and asks on the terminal; with no
--              terminal it refuses (exit 2) and names --yes;
--   otherwise: runs it. --all-locations runs it once per location of the
--              agency through ghl.each_location (concurrently, resumable
--              with --checkpoint FILE): each location's output is printed
--              as one block when it finishes, under a header line (its
--              place, name, id, outcome, requests and time), so 300
--              locations run 32 at a time still read one by one; then the
--              locations that failed and a totals line (ok, failed,
--              skipped, time taken). Ctrl-C prints the same for what was
--              done and how to go on.
-- The recipe's return value is printed (tables as JSON). Exit status: 0,
-- 1 when it failed (or any location failed), 2 for usage errors.
local args = require "ghl.cli.args"
local recipe = require "ghl.recipe"
local E = require "ghl.error"
local sys = require "ghl.sys"

local M = {}

M.summary = "run a recipe (a shared Lua script) safely: sandbox, dry run, fan-out"
M.usage = "ghlua run RECIPE [--param NAME=VALUE]... [--location ID | --all-locations] [--app NAME] "
  .. "[--concurrency N] [--checkpoint FILE] [--dry-run] [--yes] [--force] [--max-memory SIZE] "
  .. "[--timeout SECONDS] [--trust] [--json]"

M.help = [[
Run RECIPE, a Lua file that calls recipe{name=, description=, scopes=,
writes=, params=} and returns function(params, client, location).
'ghlua run RECIPE --help' shows its manifest: parameters, scopes, writes.
A plain script (no recipe{...}) is refused: run it with 'ghlua FILE'.

  --param NAME=VALUE   a parameter (repeatable), checked against the manifest
  --location ID        run for this location (default: GHL_LOCATION_ID, or
                       the only stored token)
  --all-locations      run once per location where the app is installed,
                       with location tokens minted from the agency login
  --concurrency N      locations at a time with --all-locations (default 32)
  --checkpoint FILE    with --all-locations: record finished locations in
                       FILE; run again with it to skip them (a run that was
                       stopped goes on where it left off)
  --app NAME           the stored app to use
  --dry-run            send reads, record writes, print the plan (the
                       recipe sees client.dry_run and says "would ...")
  --yes                do not ask before a recipe that writes
  --force              let the recipe replace output files that exist
  --max-memory SIZE    the recipe's memory limit (default 512M; K, M, G)
  --timeout SECONDS    end the recipe after this long (default: none on a
                       terminal, 3600 otherwise)
  --trust              run it as your own script: no sandbox and no limits,
                       the whole library, io and os, any file, any host
  --json               print the result (and the --all-locations report)
                       as JSON on stdout; the recipe's own output goes
                       to stderr

Sandbox: without --trust a recipe runs in a Lua state of its own, and
ghlua makes its requests for it. It can call only the API host, only the
routes its manifest's scopes cover, and no write at all when the manifest
says writes = false. It reads and writes only the files named by its
input_file and output_file parameters (never a symlink, a dot-directory
or the token store's directory), and requires only the ghl modules and
Lua files beside it. It has no io, os (but the clock), package or debug,
and never sees a token.

Environment: GHL_TOKEN (a bearer token, used unless --app) with
GHL_LOCATION_ID; otherwise the token store (ghlua auth login).
]]

M.flags = { param = { "list", value = "NAME=VALUE" }, location = args.LOCATION, ["all-locations"] = "flag",
  app = args.APP, concurrency = { "number", value = "N" }, checkpoint = { "string", value = "FILE", complete = "file" },
  ["dry-run"] = "flag", yes = "flag", force = "flag", ["max-memory"] = { "string", value = "SIZE" },
  timeout = { "number", value = "SECONDS" }, trust = "flag", json = "flag",
  -- run's own: with a recipe, --help shows the recipe's manifest
  help = { "flag", short = "h" } }
M.arguments = { { "RECIPE", complete = "lua" } }

local function usage(msg)
  E.raise { kind = "usage", message = msg .. "; usage: " .. M.usage }
end

local function out(s) io.stdout:write(s, "\n") end

local function print_result(v, json)
  if v == nil then return end
  if type(v) == "table" then
    local json = require "ghl.json"
    local text = json.encode(v)
    if text and json then out(text)
    else out(text or require("ghl.inspect")(v)) end
  else
    out(tostring(v))
  end
end

-- The client and the scopes granted to its token (nil: not known).
local function make_client(o, plan)
  local client_mod = require "ghl.client"
  local token = os.getenv("GHL_TOKEN")
  if token and token ~= "" and not o.app then
    return client_mod.new { token = token, location = o.location, dry_run = plan }, nil
  end
  local c = client_mod.new { location = o.location, app = o.app, dry_run = plan, schema_cache = "store" }
  local auth = require "ghl.auth"
  local row, crow = auth.find { location = c.location, company = not c.location and c.company or nil, app = c.app }
  row = row or crow
  return c, row and row.scope
end

local function check_scopes(m, granted, what)
  if granted == nil then return end
  local missing = recipe.missing_scopes(m, granted)
  if #missing > 0 then
    E.raise { kind = "auth", code = "missing_scopes",
      message = ("%s needs scopes the %s was not granted: %s"):format(m.name, what, table.concat(missing, " ")),
      hint = "log in again with them: ghlua auth login --scopes '" .. table.concat(m.scopes, " ") .. "'" }
  end
end

-- What a checkpoint belongs to: the recipe and its parameters (a
-- checkpoint of another recipe, or of other parameters, is refused).
local function job_of(r, params)
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = { "recipe " .. tostring(r.manifest.name) }
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(params[k]) end
  return table.concat(parts, " ")
end

-- --all-locations: run through ghl.each_location, printing each location's
-- output as a block under its header as it finishes, then the summary.
-- Returns the exit status.
local function fan_out(r, params, o, plan, quiet, call)
  local fanout = require "ghl.fanout"
  local stream = o.json and io.stderr or io.stdout
  -- what the recipe prints goes to the location it runs for
  local function sink(text)
    local e = fanout.current()
    if e then
      e.output = e.output or {}
      e.output[#e.output + 1] = text
    elseif not quiet then
      stream:write(text, "\n")
    end
  end
  local env_print = r.env and rawget(r.env, "print")
  if r.box then
    r.box:set { sink = sink }
  else
    rawset(r.env, "print", function(...)
      local t = table.pack(...)
      for i = 1, t.n do t[i] = tostring(t[i]) end
      sink(table.concat(t, "\t", 1, t.n))
    end)
  end
  -- locations done in an earlier run are counted on one line, not listed
  local earlier, told = 0, false
  local function tell_earlier(report)
    if earlier > 0 and not told then
      told = true
      stream:write(("== %d of %d locations were done in an earlier run (checkpoint %s)\n")
        :format(earlier, report.total, o.checkpoint))
    end
  end
  local function on_done(e, report)
    if quiet then return end
    if e.skipped and e.ok then earlier = earlier + 1; return end
    tell_earlier(report)
    local lines = { fanout.header(e, report) }
    for _, l in ipairs(e.output or {}) do lines[#lines + 1] = l end
    e.output = nil
    stream:write(table.concat(lines, "\n"), "\n")
    stream:flush()
  end
  local checkpoint = not plan and o.checkpoint or nil
  local ok, report = pcall(fanout.each_location, function(c, loc) return call(c, loc) end, {
    locations = "all", app = o.app, concurrency = o.concurrency, dry_run = plan, progress = false, schema_cache = "store",
    checkpoint = checkpoint, job = job_of(r, params), on_done = on_done })
  if r.box then r.box:set { sink = false } else rawset(r.env, "print", env_print) end
  if not ok then
    local err = report
    if E.is(err) and err.kind == "interrupted" and err.report and not quiet then
      local rep = err.report
      tell_earlier(rep)
      local finished = 0
      for _, e in ipairs(rep.locations) do if e.done and not (e.skipped and e.ok) then finished = finished + 1 end end
      for _, l in ipairs(fanout.summary(rep)) do stream:write(l, "\n") end
      err.message = ("interrupted after %d of the %d locations left to do"):format(finished, rep.total - earlier)
      err.hint = checkpoint and ("run the same command again (with --checkpoint %s) to go on where it stopped"):format(checkpoint)
        or "with --checkpoint FILE, a run that was stopped goes on where it left off when run again"
    end
    error(err, 0)
  end
  if quiet then return report.failed > 0 and 1 or 0 end
  tell_earlier(report)
  if o.json then
    local list = {}
    for i, e in ipairs(report.locations) do
      list[i] = { id = e.id, name = e.name, ok = e.ok, skipped = e.skipped or nil, reason = e.reason,
        counts = e.counts, seconds = e.seconds, error = e.error and E.tostring(e.error) or nil, result = e.result }
    end
    out(require("ghl.json").encode { locations = list, ok = report.ok, failed = report.failed,
      skipped = report.skipped, total = report.total, seconds = report.seconds })
  end
  for _, l in ipairs(fanout.summary(report)) do stream:write(l, "\n") end
  return report.failed > 0 and 1 or 0
end

-- Run once (one client) or per location; returns the exit status.
local function execute(r, params, o, plan, quiet)
  local main = r.main
  local function call(c, loc)
    local p = {}
    for k, v in pairs(params) do p[k] = v end
    return main(p, c, loc)
  end
  if o["all-locations"] then return fan_out(r, params, o, plan, quiet, call) end
  local c = r.client
  local v = call(c, { id = c.location })
  if not quiet then print_result(v, o.json) end
  return 0
end

local function show_plan(plan, stream)
  local files = plan.files and #plan.files or 0
  stream:write(("dry run: %d write%s planned%s, nothing was sent\n"):format(#plan, #plan == 1 and "" or "s",
    files > 0 and (" and %d file%s"):format(files, files == 1 and "" or "s") or ""))
  for _, l in ipairs(recipe.plan_lines(plan)) do stream:write(l, "\n") end
end

function M.run(argv)
  local o, rest = args.parse(argv, M.flags, M.usage)
  local path = rest[1]
  if not path then
    if o.help then require("ghl.cli.help").print_help(M); return 0 end
    usage("which recipe? give its file")
  end
  if #rest > 1 then usage("unexpected argument '" .. rest[2] .. "'") end
  if o.location and o["all-locations"] then usage("give --location or --all-locations, not both") end
  if o.checkpoint and not o["all-locations"] then usage("--checkpoint goes with --all-locations") end
  if o.concurrency and not o["all-locations"] then usage("--concurrency goes with --all-locations") end
  if o.concurrency and (o.concurrency < 1 or o.concurrency ~= math.floor(o.concurrency)) then
    usage("--concurrency takes a whole number of locations at a time, 1 or more")
  end

  local max_memory
  if o["max-memory"] then
    max_memory = require("ghl.sandbox").parse_size(o["max-memory"])
    if not max_memory or max_memory < 1024 * 1024 then
      usage("--max-memory takes a size of at least 1M, like 256M or 2G, got '" .. o["max-memory"] .. "'")
    end
  end
  if o.timeout and o.timeout <= 0 then usage("--timeout takes a number of seconds above 0") end
  if o.trust and (o.timeout or max_memory) then usage("--timeout and --max-memory limit the sandbox; --trust runs without it") end
  local timeout = o.timeout or (not sys.isatty(0) and 3600 or nil)

  local function load_recipe()
    local rr = recipe.load(path, { trust = o.trust, max_memory = max_memory, timeout = timeout,
                                   output = o.json and 2 or 1 })
    if o.json and rr.trusted then
      -- stdout carries the JSON only; what the recipe prints goes to stderr
      rawset(rr.env, "print", function(...)
        local t = table.pack(...)
        for i = 1, t.n do t[i] = tostring(t[i]) end
        io.stderr:write(table.concat(t, "\t", 1, t.n), "\n")
      end)
    end
    return rr
  end
  local r = load_recipe()
  local m = r.manifest
  if o.help then
    io.stdout:write(recipe.help(m, path))
    return 0
  end
  local raw = {}
  for _, kv in ipairs(o.param or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then usage("--param takes NAME=VALUE, got '" .. kv .. "'") end
    raw[k] = v
  end
  local params = recipe.params(m, raw, { force = o.force, sandboxed = not o.trust })
  -- what the sandbox lets it do: the manifest's word and the files named
  local function allow(rr)
    if rr.box then
      rr.box:grant(params, rr.manifest)
      rr.box:policy { manifest = rr.manifest, force = o.force }
    end
  end
  allow(r)

  -- the token and its grant, checked before anything runs
  if o["all-locations"] then
    local token = os.getenv("GHL_TOKEN")
    if token and token ~= "" and not o.app then
      usage("--all-locations needs an agency login in the store ('ghlua auth login --user-type Company'), not GHL_TOKEN")
    end
    local crow = require("ghl.locations").company_row { app = o.app }
    o.app = o.app or crow.app
    check_scopes(m, crow.scope, "agency token")
  end

  local function with_client(plan)
    if not o["all-locations"] then
      local c, granted = make_client(o, plan)
      check_scopes(m, granted, "token")
      r.client = c
    end
  end

  if o["dry-run"] then
    local plan = {}
    with_client(plan)
    local status = execute(r, params, o, plan)
    show_plan(plan, io.stdout)
    return status
  end

  if m.writes and not o.yes then
    if not sys.isatty(0) then
      E.raise { kind = "usage", code = "confirm",
        message = ("%s writes to HighLevel and there is no terminal to confirm on"):format(m.name),
        hint = "pass --yes to run it, or --dry-run to see what it would send" }
    end
    local plan = {}
    with_client(plan)
    -- the recipe's own output belongs to the real run
    local env_print = r.env and rawget(r.env, "print")
    if r.box then r.box:set { mute = true } else rawset(r.env, "print", function() end) end
    local status = execute(r, params, o, plan, true)
    if r.box then r.box:set { mute = false } else rawset(r.env, "print", env_print) end
    if status ~= 0 then return status end
    show_plan(plan, io.stderr)
    local files = plan.files and #plan.files or 0
    if #plan == 0 and files == 0 then
      io.stderr:write("nothing to write\n")
      return 0
    end
    local what = {}
    if #plan > 0 then what[1] = #plan == 1 and "send this write" or ("send these %d writes"):format(#plan) end
    if files > 0 then what[#what + 1] = files == 1 and "write this file" or ("write these %d files"):format(files) end
    io.stderr:write(table.concat(what, " and "), "? [y/N] ")
    io.stderr:flush()
    local answer = io.stdin:read("l") or ""
    if not answer:match("^%s*[yY]") then
      io.stderr:write("nothing was sent\n")
      return 1
    end
    -- a fresh load: the dry run may have left state in the recipe's globals
    if r.box then r.box:close() end
    r = load_recipe()
    allow(r)
  end
  with_client(nil)
  return execute(r, params, o, nil)
end

return M
