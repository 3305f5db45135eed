-- `ghlua webhook serve|list|show|replay|verify|trigger`: a local receiver
-- for HighLevel webhooks, the events it stored (ghl.webhooks, the store's
-- events table), and a sender of test events.
--   serve   listen (ghl.server), verify, de-duplicate, store, run the
--           built-ins and --handler FILE; one line per event on stdout,
--           rejections and failures on stderr; SIGINT/SIGTERM stop it
--           cleanly (exit 0)
--   list, show   read the stored events
--   replay  send stored events again, to a handler or to a URL
--   verify  check one body (stdin) against a signature: exit 0 or 1
--   trigger send one signed event of a named type to a URL (the
--           simulator's payloads, ghl.sim.webhooks.sample), print the
--           answer: exit 0 on 2xx, else 1. The simulator app runs it
--           (ghl.sim.trigger, started by main.c): only its definition is
--           here; the event types are library data (ghl.webhooks.events)
-- serve and verify also trust the local simulator's development key, as
-- ghl.webhooks.sim_trust decides (--sim-key, --no-sim-key); trigger signs
-- with it. Trigger lives here rather than under `ghlua sim`: it needs no
-- simulator running, it is the receiver's test tool (as `stripe trigger`
-- is next to `stripe listen`), and it shares serve's trust path.
-- Bad flags exit 2; a replay that fails, or an unknown event id, exit 1.
local args = require "ghl.cli.args"
local E = require "ghl.error"
local sys = require "ghl.sys"
local events = require "ghl.webhooks.events"
local util = require "ghl.util"

local M = {}

M.DEFAULT_PORT = events.DEFAULT_PORT

M.summary = "receive HighLevel webhooks locally: serve, list, show, replay, verify, trigger"

local KEY = { "string", value = "KEY", complete = "file" }

-- The subcommands; each function below parses its node's flags.
M.subcommands = {
  { name = "serve", summary = "listen for deliveries: verify, store, run the built-ins and a handler",
    usage = "ghlua webhook serve [--port N] [--host H] [--path P] [--handler FILE] [--public-key KEY|--no-verify]"
      .. " [--legacy-rsa [--rsa-public-key KEY]] [--sim-key|--no-sim-key] [--max-age S] [--no-builtins]"
      .. " [--ready-file F] [--quiet]",
    flags = { port = { "number", value = "N" }, host = { "string", value = "H" }, path = { "string", value = "P" },
      handler = { "string", value = "FILE", complete = "file" }, ["public-key"] = KEY, ["no-verify"] = "flag",
      ["legacy-rsa"] = "flag", ["rsa-public-key"] = KEY, ["sim-key"] = "flag", ["no-sim-key"] = "flag",
      ["max-age"] = { "number", value = "S" },
      ["no-builtins"] = "flag", ["ready-file"] = { "string", value = "F", complete = "file" }, quiet = "flag" },
    help = [[
Listen for deliveries (default http://127.0.0.1:4242, any path; --path P:
only P). Every delivery is verified before anything else: X-GHL-Signature,
Ed25519 over the raw body, with HighLevel's published key or --public-key
KEY (PEM text or file, SPKI base64, or the raw 32-byte key in base64 or
hex). The legacy X-WH-Signature (RSA-SHA256) counts only with --legacy-rsa
(key: the one in HighLevel's docs, or --rsa-public-key). --no-verify
accepts unsigned deliveries (stored as not verified; local tests only).
Answers: 401 bad or missing signature, or a timestamp that is missing, not
a time between 1970 and 9999, or more than --max-age seconds (default 300;
0: no check) away from now; 409 a webhookId already received; 400 not a
JSON event (strict JSON, an object with a "type", at most 64 levels deep,
string ids); 200 stored and handled; 429 the handler or a built-in failed,
or the store could not record it, so HighLevel redelivers (the redelivery
runs it again). Each refusal is one line on stderr, with bytes a terminal
would act on shown escaped (\x1b). --quiet: no line per event.

The local simulator: 'ghlua sim' and 'ghlua webhook trigger' sign with
your development key, $GHLUA_HOME/sim-webhook-key.pem (made once, mode
0600 in the 0700 GHLUA_HOME). serve also accepts it, after the configured
key, while GHLUA_API_BASE names a loopback host (your API is a local
simulator; a receiver working with HighLevel never does), only from that
private file (same user, same machine), and says so when it starts; such
events are stored and shown as "verified: simulator" (ctx.verified ==
"simulator"), and the age limit and de-duplication apply to them as to
HighLevel's. --sim-key: trust the key whatever GHLUA_API_BASE is;
--no-sim-key: never.

Built-ins (--no-builtins: off): INSTALL of a location (an agency install
sends one per approved location) mints and stores its token from the
stored agency (Company) token of the app, in the company's rate budget,
unless a usable token of the app is stored for it already (a repeated
INSTALL mints nothing). The delivery is answered at once: when the agency
token is not stored yet (a login still exchanging its code; waited for up
to 5 minutes) or the company's budget is spent, the event is kept
"pending" and its token minted between deliveries (a receiver stopped
meanwhile resumes them when it starts again); a mint that fails for good
marks the event "failed" with the reason. UNINSTALL marks the location's
(or company's) stored tokens "uninstalled".

--handler FILE: a Lua file returning function(event, ctx); event is the
decoded payload, ctx has id, type, location, company, app, headers, body
(raw), verified, received_at, attempt, replay, store, log(fmt, ...) and
client (an API client for the event's location, made on first use). The
file is loaded again when it changes. --ready-file F: once listening,
write {url, port, pid} to F (JSON). SIGINT or SIGTERM stop it cleanly
(exit 0).
]] },
  { name = "list", summary = "the stored events, oldest first",
    usage = "ghlua webhook list [--type T] [--since WHEN] [--location ID] [--limit N] [--json]",
    flags = { type = { "string", value = "T" }, since = { "string", value = "WHEN" }, location = args.LOCATION,
      limit = { "number", value = "N" }, json = "flag" },
    help = [[
Stored events, oldest first: --type T, --since WHEN (10m, 2h, 3d, an
ISO-8601 time or epoch seconds), --location ID, --limit N (the newest N),
--json.
]] },
  { name = "show", summary = "one stored event: its fields, headers and body",
    usage = "ghlua webhook show ID [--json|--body]", flags = { json = "flag", body = "flag" },
    arguments = { { "ID" } },
    help = [[
One stored event: its fields, headers and body; --json the whole record;
--body the raw body alone, byte for byte.
]] },
  { name = "replay", summary = "send stored events again, to a handler or to a URL",
    usage = "ghlua webhook replay ID... (--handler FILE | --to URL)",
    flags = { handler = { "string", value = "FILE", complete = "file" }, to = { "string", value = "URL" } },
    arguments = { { "ID", many = true } },
    help = [[
Send stored events again: --handler FILE calls the handler (no
verification, no built-ins, ctx.replay = true); --to URL POSTs the
original body with its Content-Type and signature headers, which still
verify (a signature covers the body only; the receiver's age limit and
de-duplication still apply). Exit status 1 when a replay fails.
]] },
  { name = "verify", summary = "check a body read on stdin against a signature",
    usage = "ghlua webhook verify --signature SIG [--public-key KEY] [--legacy-rsa] [--sim-key|--no-sim-key] < body",
    flags = { signature = { "string", value = "SIG" }, ["public-key"] = KEY, ["legacy-rsa"] = "flag",
      ["sim-key"] = "flag", ["no-sim-key"] = "flag" },
    help = [[
Read a body on stdin and check --signature SIG (base64), as
X-GHL-Signature, or as X-WH-Signature with --legacy-rsa; exit 0 when it
verifies, 1 when it does not. The local simulator's key counts as for
serve (--sim-key, --no-sim-key).
]] },
  { name = "trigger", summary = "send one signed event of a named type, as HighLevel would",
    usage = "ghlua webhook trigger TYPE [--url URL] [--location ID] [--company ID] [--app CLIENT_ID] [--agency]"
      .. " [--field K=V]... [--key PEM] [--print]",
    flags = { url = { "string", value = "URL" }, location = args.LOCATION, company = { "string", value = "ID" },
      app = { "string", value = "CLIENT_ID" }, agency = "flag", field = { "list", value = "K=V" },
      key = { "string", value = "PEM", complete = "file" }, print = "flag" },
    arguments = { { "TYPE", complete = events.NAMES } },
    run_by = "ghl.sim.trigger", entry = "run",   -- the simulator app builds the events
    help = function() return [[
Send one event of type TYPE (below), as HighLevel would: a realistic
payload (the simulator's, with fresh ids, a new webhookId and the current
timestamp) signed with your development key (--key PEM: another Ed25519
private key), to --url (default http://127.0.0.1:4242/, serve's default).
--location ID, --company ID (default: the simulator's), --app CLIENT_ID
(INSTALL, UNINSTALL, PLAN_CHANGE; default: the app stored in GHLUA_HOME
when there is one), --agency (those three for the agency: no locationId),
--field K=V (repeatable: set payload field K, a.b for a nested one; V is a
JSON number, true, false, null, array, object or "string" when it is one,
else text, so 02108 stays text: --field monetaryValue=500, --field
webhookId=same-again to see the de-duplication, --field timestamp=... the
age limit), --print (the body sent, on stdout). Prints the receiver's
answer; exit 0 on 2xx, 1 otherwise.

]] .. M.trigger_types() end },
}

-- The event types trigger sends, as help lines.
function M.trigger_types()
  local names = {}
  for _, n in ipairs(events.NAMES) do names[#names + 1] = n end
  local lines, line = {}, "Types:"
  for _, n in ipairs(names) do
    if #line + #n + 1 > 76 then
      lines[#lines + 1] = line
      line = "   "
    end
    line = line .. " " .. n
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n") .. "\n"
end
local SUB = {}
for _, node in ipairs(M.subcommands) do SUB[node.name] = node end

-- ---- Helpers ----

local current   -- the running subcommand's usage line

local function usage(msg) args.usage(msg, current) end

-- A line on stdout; stored or received bytes in it are shown escaped.
local function out(fmt, ...)
  io.stdout:write(E.sanitize(string.format(fmt, ...), true), "\n")
  io.stdout:flush()
end

-- A line on stderr; outside bytes in it are shown escaped (multiline:
-- newlines kept, for a handler's traceback).
local function warn(line, multiline)
  io.stderr:write("ghlua webhook: ", E.sanitize(line, multiline), "\n")
  io.stderr:flush()
end

local function stamp(t)
  return t and util.iso8601(t) or "-"
end

-- Write data to path atomically, mode 0600.
local function write_atomic(path, data)
  local ok, err = util.write_atomic(path, data)
  if not ok then E.raise { kind = "io", message = "cannot write ready file " .. path .. ": " .. err } end
end

-- A handler that reloads its file when the file changes.
local function live_handler(path)
  local webhooks = require "ghl.webhooks"
  local st = sys.stat(path)
  if not st then E.raise { kind = "usage", message = "no handler file " .. path } end
  local fn, mtime, size = webhooks.load_handler(path), st.mtime, st.size
  return function(event, ctx)
    local now = sys.stat(path)
    if now and (now.mtime ~= mtime or now.size ~= size) then
      fn, mtime, size = webhooks.load_handler(path), now.mtime, now.size
      warn("reloaded handler " .. path)
    end
    return fn(event, ctx)
  end
end

-- --since WHEN -> epoch seconds.
local UNITS = { s = 1, m = 60, h = 3600, d = 86400, w = 604800 }
function M.since(v)
  local n, unit = v:match("^(%d+%.?%d*)([smhdw])$")
  if n then return sys.time() - tonumber(n) * UNITS[unit] end
  if v:match("^%d+%.?%d*$") then return tonumber(v) end
  local t = require("ghl.webhooks").parse_time(v)
  if not t then
    local d = v:match("^(%d%d%d%d%-%d%d%-%d%d)$")
    t = d and require("ghl.webhooks").parse_time(d .. "T00:00:00Z")
  end
  if not t then usage("--since takes 10m, 2h, 3d, an ISO-8601 date or time, or epoch seconds; got '" .. v .. "'") end
  return t
end

local function store()
  return require("ghl.auth").store()
end

local function get_event(id)
  local row, err = store():get_event(id)
  if err then error(err, 0) end
  if not row then
    E.raise { kind = "not_found", message = "no stored event " .. id,
              hint = "see 'ghlua webhook list'" }
  end
  return row
end

-- ---- serve ----

-- The simulator key's trust mode from --sim-key / --no-sim-key.
local function sim_mode(o)
  if o["sim-key"] and o["no-sim-key"] then usage("give --sim-key or --no-sim-key, not both") end
  return o["sim-key"] and "on" or o["no-sim-key"] and "off" or "auto"
end

local function serve(argv)
  local webhooks, server = require "ghl.webhooks", require "ghl.server"
  local o, rest = args.parse(argv, SUB.serve.flags, current)
  if #rest > 0 then usage("unexpected argument '" .. rest[1] .. "'") end
  local port = o.port or M.DEFAULT_PORT
  if math.tointeger(port) == nil or port < 0 or port > 65535 then usage("--port must be 0..65535") end
  if o["no-verify"] and (o["public-key"] or o["legacy-rsa"]) then
    usage("--no-verify cannot be combined with --public-key or --legacy-rsa")
  end
  if o["rsa-public-key"] and not o["legacy-rsa"] then usage("--rsa-public-key needs --legacy-rsa") end
  local mode = sim_mode(o)
  if o["no-verify"] and o["sim-key"] then usage("--no-verify cannot be combined with --sim-key") end
  local max_age = o["max-age"] or webhooks.MAX_AGE
  if not (max_age >= 0 and max_age < math.huge) then usage("--max-age must be a number of seconds, 0 or more") end
  local path = o.path
  if path and path:sub(1, 1) ~= "/" then usage("--path must start with '/'") end
  local key, info = webhooks.PUBLIC_KEY, nil
  if o["public-key"] then key, info = webhooks.read_key(o["public-key"], "--public-key") end
  if info and info.type ~= "ed25519" then usage("--public-key must be an Ed25519 key, got " .. info.type) end
  local rsa_key
  if o["rsa-public-key"] then
    local rinfo
    rsa_key, rinfo = webhooks.read_key(o["rsa-public-key"], "--rsa-public-key")
    if rinfo.type ~= "rsa" then usage("--rsa-public-key must be an RSA key, got " .. rinfo.type) end
  end
  local handler = o.handler and live_handler(o.handler)
  local db = store()
  -- a store that cannot be read is reported now, not as a 429 per delivery
  db:find_tokens {}
  db:list_events { limit = 1 }
  -- the development key: made now when trusted, so the trust holds from
  -- the first delivery whichever of serve and sim starts first
  local sim = not o["no-verify"] and webhooks.sim_trust(mode, true) or nil
  if sim and sim.trusted and not sim.key then
    local err = sim.err or { message = "it could not be made" }
    if mode == "on" then
      E.raise { kind = err.kind or "io", message = "--sim-key: cannot use the simulator's development key: "
        .. err.message }
    end
    warn("not trusting the local simulator's development key: " .. err.message)
    sim.trusted, sim.why = false, err.message
  end

  local quiet = o.quiet
  local receiver = webhooks.receiver {
    path = path, public_key = key, legacy_rsa = o["legacy-rsa"], rsa_public_key = rsa_key, sim = sim,
    no_verify = o["no-verify"], max_age = max_age, handler = handler, builtins = not o["no-builtins"],
    store = db,
    log = function(level, line)
      if level == "event" then
        out("%s %s", os.date("%H:%M:%S"), E.sanitize(line))   -- one line
      elseif level ~= "info" or not quiet then
        warn(line, level == "error")
      end
    end,
  }
  local srv, err = server.listen { host = o.host or "127.0.0.1", port = port,
    handler = function(req) return receiver:handle(req) end }
  if not srv then error(err, 0) end
  local url = srv.url .. (path or "/")
  local pub = assert(require("ghl.crypto").public_key(key))
  out("ghlua webhook: listening on %s (%s; max age %s; store %s)", url,
    o["no-verify"] and "signatures NOT verified" or ("Ed25519 key " .. pub.spki
      .. (o["legacy-rsa"] and ", legacy RSA accepted" or "")),
    max_age > 0 and (max_age .. " s") or "off", db.path)
  if sim and sim.trusted then
    out("ghlua webhook: also trusting the local simulator's development key %s (%s): its deliveries are"
      .. " marked \"verified: simulator\"; --no-sim-key refuses them", sim.key.spki, sim.key.path)
  elseif sim and sim.key then
    out("ghlua webhook: not trusting the local simulator's development key: %s", sim.why)
  end
  if handler then out("ghlua webhook: handler %s", o.handler) end
  if o["ready-file"] then
    local ok, werr = pcall(write_atomic, o["ready-file"], require("ghl.json").encode {
      url = url, port = srv.port, pid = sys.getpid() })
    if not ok then srv:close() error(werr, 0) end
  end
  local resumed = receiver:resume()
  if resumed > 0 then out("ghlua webhook: %d INSTALL event%s left pending; minting their tokens", resumed,
    resumed == 1 and "" or "s") end
  -- serve in rounds and mint queued location tokens between them: a
  -- delivery never waits for the rate budget
  local ok, rerr
  repeat
    ok, rerr = srv:step(receiver:wait_time(1))
    if ok then
      local pok, perr = pcall(receiver.pump, receiver)
      if not pok then warn("queued INSTALLs: " .. tostring(E.is(perr) and perr.message or perr)) end
    end
  until not ok
  srv:close()
  if o["ready-file"] then os.remove(o["ready-file"]) end
  if not ok and not (E.is(rerr) and rerr.kind == "interrupted") then error(rerr, 0) end
  local st = receiver.stats
  out("ghlua webhook: stopped (%d handled, %d rejected, %d duplicate%s, %d failed; %d location token%s minted"
    .. ", %d INSTALL%s pending)", st.accepted, st.rejected - st.duplicates, st.duplicates,
    st.duplicates == 1 and "" or "s", st.failed, st.minted, st.minted == 1 and "" or "s", #receiver.pending, #receiver.pending == 1 and "" or "s")
  return 0
end

-- ---- list, show ----

local function list(argv)
  local o, rest = args.parse(argv, SUB.list.flags, current)
  if #rest > 0 then usage("unexpected argument '" .. rest[1] .. "'") end
  local limit = o.limit and math.tointeger(o.limit)
  if o.limit and (not limit or limit < 1) then usage("--limit must be a positive integer") end
  local rows = assert(store():list_events { type = o.type, since = o.since and M.since(o.since),
    location = o.location, limit = limit })
  if o.json then
    local cjson = require "cjson"
    local items = {}
    for i, r in ipairs(rows) do
      items[i] = { id = r.id, type = r.type, location_id = r.location_id, company_id = r.company_id,
        received_at = r.received_at, verified = r.verified, status = r.status, attempts = r.attempts, note = r.note }
    end
    io.stdout:write(#items == 0 and "[]" or assert(require("ghl.json").encode(items)), "\n")
    return 0
  end
  if #rows == 0 then
    out("no stored events%s", (o.type or o.since or o.location) and " match" or "")
    return 0
  end
  for _, r in ipairs(rows) do
    out("%s  %-36s  %-20s %-24s %-8s%s", stamp(r.received_at), r.id, r.type or "-",
      r.location_id or (r.company_id and ("company " .. r.company_id)) or "-", r.status,
      (r.verified == "simulator" and " verified: simulator" or r.verified and "" or " unverified")
        .. ((r.attempts or 1) > 1 and (" attempts " .. r.attempts) or ""))
  end
  return 0
end

local function show(argv)
  local o, rest = args.parse(argv, SUB.show.flags, current)
  if #rest ~= 1 then usage("webhook show needs exactly one event ID") end
  if o.json and o.body then usage("give --json or --body, not both") end
  local row = get_event(rest[1])
  if o.body then
    io.stdout:write(row.body)
    return 0
  end
  local headers = require("ghl.webhooks").headers_of(row)
  if o.json then
    local cjson = require "cjson"
    local rec = { id = row.id, type = row.type, location_id = row.location_id, company_id = row.company_id,
      received_at = row.received_at, verified = row.verified, status = row.status, note = row.note,
      attempts = row.attempts, headers = headers, body = row.body }
    io.stdout:write(assert(require("ghl.json").encode(rec)), "\n")
    return 0
  end
  out("id        %s", row.id)
  out("type      %s", row.type or "-")
  if row.location_id then out("location  %s", row.location_id) end
  if row.company_id then out("company   %s", row.company_id) end
  out("received  %s", stamp(row.received_at))
  out("verified  %s", row.verified == "simulator"
    and "simulator (the local simulator's development key, not HighLevel's)" or row.verified and "yes" or "no")
  out("status    %s%s%s", row.status, (row.attempts or 1) > 1 and (" after " .. row.attempts .. " attempts") or "",
    row.note and (": " .. row.note) or "")
  local names = {}
  for k in pairs(headers) do names[#names + 1] = k end
  table.sort(names)
  out("headers")
  for _, k in ipairs(names) do out("  %s: %s", k, tostring(headers[k])) end
  out("body")
  io.stdout:write(E.sanitize(row.body, true), row.body:sub(-1) == "\n" and "" or "\n")
  return 0
end

-- ---- replay ----

local function replay(argv)
  local webhooks = require "ghl.webhooks"
  local o, ids = args.parse(argv, SUB.replay.flags, current)
  if #ids == 0 then usage("webhook replay needs at least one event ID") end
  if (o.handler and o.to) or not (o.handler or o.to) then usage("give --handler FILE or --to URL (one of them)") end
  if o.to and not o.to:match("^https?://[^/]") then usage("--to must be an http:// or https:// URL") end
  local rows = {}
  for i, id in ipairs(ids) do rows[i] = get_event(id) end
  local fn = o.handler and webhooks.load_handler(o.handler)
  local failed = 0
  for _, row in ipairs(rows) do
    if fn then
      local ok, err = webhooks.replay_to_handler(fn, row, { store = store(),
        log = function(_, line) warn(line) end })
      if ok then
        out("replayed %s %s to %s: ok", row.type or "-", row.id, o.handler)
      else
        failed = failed + 1
        warn(string.format("replay of %s %s to %s failed: %s", row.type or "-", row.id, o.handler, err))
      end
    else
      local resp, err = webhooks.replay_to_url(row, o.to)
      local ok = resp and resp.status >= 200 and resp.status < 300
      if ok then
        out("replayed %s %s to %s: HTTP %d", row.type or "-", row.id, o.to, resp.status)
      else
        failed = failed + 1
        warn(string.format("replay of %s %s to %s failed: %s", row.type or "-", row.id, o.to,
          resp and ("HTTP " .. resp.status .. " " .. resp.body:sub(1, 200)) or tostring(err)))
      end
    end
  end
  return failed == 0 and 0 or 1
end

-- ---- verify ----

local function verify(argv)
  local webhooks = require "ghl.webhooks"
  local o, rest = args.parse(argv, SUB.verify.flags, current)
  if #rest > 0 then usage("unexpected argument '" .. rest[1] .. "' (the body is read from stdin)") end
  if not o.signature then usage("webhook verify needs --signature SIG") end
  local mode = sim_mode(o)
  local key = o["public-key"] and webhooks.read_key(o["public-key"], "--public-key")
  local body = io.stdin:read("a") or ""
  local headers, opts = {}, { legacy_rsa = o["legacy-rsa"], sim = webhooks.sim_trust(mode) }
  if o["legacy-rsa"] then
    headers[webhooks.LEGACY_HEADER], opts.rsa_public_key = o.signature, key
  else
    headers[webhooks.HEADER], opts.public_key = o.signature, key
  end
  local scheme, err = webhooks.verify(body, headers, opts)
  if not scheme then
    io.stderr:write("ghlua webhook verify: ", E.sanitize(err.message), "\n")
    return 1
  end
  out("ok: %s signature verifies over %d bytes%s", scheme == "rsa" and "RSA-SHA256" or "Ed25519", #body,
    scheme == "simulator" and " with the local simulator's development key (not HighLevel's)" or "")
  return 0
end

local SUBCOMMANDS = { serve = serve, list = list, show = show, replay = replay, verify = verify }

function M.run(argv)
  local sub = table.remove(argv, 1)
  local f = sub and SUBCOMMANDS[sub]
  current = require("ghl.cli.commands").usage_of(M, { "webhook" })
  if not f then usage(sub and ("unknown webhook subcommand '" .. sub .. "'") or "missing webhook subcommand") end
  current = SUB[sub].usage
  return f(argv)
end

return M
