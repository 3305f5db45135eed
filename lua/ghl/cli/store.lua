-- `ghlua store info|check|seal|migrate|key new`: the token store itself.
-- info and check open the store without needing its key (they say what is
-- wrong with it instead); seal and migrate need it. Nothing here prints a
-- secret: the one exception is `store key new`, whose output is the key
-- the user asked for.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local seal = require "ghl.seal"
local config = require "ghl.config"
local E = require "ghl.error"

local M = {}

M.summary = "the token store: info, check, seal, migrate, key new"

local KEY_ENV = [[
The store's key comes from GHLUA_STORE_KEY (64 hex digits or base64 of 32
bytes) or GHLUA_STORE_KEY_FILE (a file of yours, mode 0600, in a directory
of mode 0700); 'ghlua store key new' makes one. The key never enters the
store: it keeps a key id (an HMAC of the key) to refuse a wrong key.
]]

M.subcommands = {
  { name = "info", summary = "engine, location, schema, sealing and counts",
    usage = "ghlua store info [--json]", flags = { json = "flag" },
    help = "Show the store's engine, its location (a URL without its password), its schema\n"
      .. "version, whether its secrets are sealed (with the key id) and what it holds:\n"
      .. "apps, tokens by kind, refresh claims by phase, webhook events by status and\n"
      .. "key/value entries; on PostgreSQL also the connection's timeouts. The key is not\n"
      .. "needed.\n" },
  { name = "check", summary = "integrity, sealed values, stale claims, orphan tokens",
    usage = "ghlua store check", flags = {},
    help = "Check the store: the engine's integrity check, that every sealed value opens\n"
      .. "with the key, refresh claims left past 'claimed' (the refresh token may have\n"
      .. "been sent) by a process that died or whose lease expired, and tokens whose\n"
      .. "app is not stored. One line per finding; exit status 1 when there is any.\n\n" .. KEY_ENV },
  { name = "seal", summary = "encrypt the secrets of a SQLite store in place with the key",
    usage = "ghlua store seal", flags = {},
    help = "Encrypt every client secret, access token, refresh token and PIT of the store\n"
      .. "with the key, in one transaction: all of them or none. From then on the store\n"
      .. "opens only with that key.\n\n" .. KEY_ENV },
  { name = "migrate", summary = "copy the store to another (PostgreSQL, or a SQLite file)",
    usage = "ghlua store migrate --to URL|PATH",
    flags = { to = { "string", value = "URL|PATH", complete = "file",
                     desc = "the target: postgresql://USER@HOST/DB or a SQLite file" } },
    help = "Copy apps, tokens (with their rotation state: previous refresh tokens, status,\n"
      .. "notes), refresh claims with their phase (a claim left 'sending' stays\n"
      .. "'sending'), key/value entries and webhook events to the target store, in one\n"
      .. "transaction, then check the counts. A target that already holds apps or tokens\n"
      .. "is refused, and so is a source with a refresh running. Secrets are sealed on\n"
      .. "the way in with the key (required for PostgreSQL). The source is not changed.\n\n"
      .. KEY_ENV },
  { name = "key", summary = "store keys: new",
    subcommands = {
      { name = "new", summary = "print a fresh store key",
        usage = "ghlua store key new", flags = {},
        help = "Print a fresh random key (64 hex digits) on standard output. Keep it in a file\n"
          .. "of mode 0600 (GHLUA_STORE_KEY_FILE) or a secret manager (GHLUA_STORE_KEY).\n" },
    } },
}
local SUB = {}
for _, node in ipairs(M.subcommands) do SUB[node.name] = node end
local KEY_NEW = M.subcommands[#M.subcommands].subcommands[1]

local current

local function out(...) io.stdout:write(...) end

-- args.parse, refusing operands: no store subcommand takes any.
local function parse(argv, flags, line)
  local o, rest = args.parse(argv, flags, line or current)
  if #rest > 0 then args.usage("unexpected argument '" .. rest[1] .. "'", line or current) end
  return o
end

-- The location for messages: a handle's path (the engine drops the
-- password from a connection string); this strips a URL's password again
-- only as a fallback. Never give it a location the user typed.
function M.location(loc)
  loc = tostring(loc)
  loc = loc:gsub("^(%a[%w+.-]*://[^:/@]*):[^@/]*@", "%1@")
  loc = loc:gsub("([?&]password=)[^&]*", "%1…")
  return E.sanitize(loc)
end

-- Open the current store for looking at it: never refused for its key.
local function inspect()
  return auth.open_at(config.store_path(), { inspect = true })
end

-- ---- Counts ----

local function add(t, k) t[k] = (t[k] or 0) + 1 end

-- counts(h) -> {apps=, tokens=, token_kinds={}, claims=, claim_phases={},
-- events=, event_status={}, kv=}: what store h holds (h: a sealing handle
-- or a checked one; no secret is opened). The key check is not counted.
function M.counts(h)
  local e = h.native or h
  local c = { token_kinds = {}, claim_phases = {}, event_status = {}, claims = 0, kv = 0 }
  c.apps = #assert(e:list_apps())
  local toks = assert(e:find_tokens {})
  c.tokens = #toks
  for _, r in ipairs(toks) do
    add(c.token_kinds, r.kind or "oauth")
    local cl = e:claim_of(r.app, r.resource_id)
    if cl then c.claims = c.claims + 1; add(c.claim_phases, cl.phase) end
  end
  local events = assert(e:list_events {})
  c.events = #events
  for _, ev in ipairs(events) do add(c.event_status, ev.status or "received") end
  for _, kv in ipairs(assert(e:kv_list())) do
    if not (kv.ns == seal.NS and kv.key == seal.KEY) then c.kv = c.kv + 1 end
  end
  return c
end

local function breakdown(n, t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. " " .. t[k] end
  return tostring(n) .. (#parts > 0 and (" (" .. table.concat(parts, ", ") .. ")") or "")
end

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- ---- info ----

local function sealing_text(h)
  if not h.key_id then
    if h.engine_name ~= "sqlite" then return "no (a PostgreSQL store must be: set GHLUA_STORE_KEY)" end
    return "no (set GHLUA_STORE_KEY and run 'ghlua store seal' to seal it)"
  end
  local st = ({ match = "the key set matches", missing = "no key set", wrong = "the key set is another (id "
    .. tostring(h.env_key_id) .. ")", bad = "the key set is unusable" })[h.key_state] or h.key_state
  return ("yes, AES-256-GCM (key id %s; %s)"):format(h.key_id, st)
end

-- The connection's timeouts (PostgreSQL), one line, or nil.
local function timeouts_text(t)
  if not t then return nil end
  local ms = tonumber(t.tcp_user_timeout)
  return ("statement %s, idle in transaction %s, connect %ss, keepalives %s (idle %ss, every %ss, %s probes),"
    .. " tcp_user_timeout %s"):format(t.statement_timeout, t.idle_in_transaction_session_timeout,
    t.connect_timeout or "?", t.keepalives == "0" and "off" or "on", t.keepalives_idle or "?",
    t.keepalives_interval or "?", t.keepalives_count or "?", ms and ms > 0 and (("%g"):format(ms / 1000) .. "s") or "off")
end

local function info(argv)
  local o = parse(argv, SUB.info.flags)
  local h = inspect()
  local c = M.counts(h.raw)
  local schema = h.native.schema and h.native:schema() or nil
  local settings = h.native.settings and assert(h.native:settings()) or nil
  if o.json then
    out(assert(require("ghl.json").encode { engine = h.raw.engine_name, location = M.location(h.path), schema = schema,
      settings = settings,
      sealed = h.raw.key_id ~= nil, key_id = h.raw.key_id, key = h.raw.key_state,
      apps = c.apps, tokens = c.token_kinds, claims = c.claim_phases, events = c.event_status, kv = c.kv }), "\n")
    return 0
  end
  local rows = {
    { "engine", h.raw.engine_name }, { "location", M.location(h.path) }, { "schema", tostring(schema or "?") },
    { "sealed", sealing_text(h.raw) }, { "apps", tostring(c.apps) },
    { "tokens", breakdown(c.tokens, c.token_kinds) }, { "claims", breakdown(c.claims, c.claim_phases) },
    { "events", breakdown(c.events, c.event_status) }, { "kv", tostring(c.kv) },
  }
  if settings then rows[#rows + 1] = { "timeouts", timeouts_text(settings) } end
  for _, r in ipairs(rows) do out(("%-9s %s\n"):format(r[1], r[2])) end
  return 0
end

-- ---- check ----

-- findings(h) -> list of one-line findings about the store behind the
-- inspecting handle h.
function M.findings(h)
  local s, e = h.raw, h.native
  local found = {}
  local function f(fmt, ...) found[#found + 1] = E.sanitize(fmt:format(...)) end
  local ok, err = e:check()
  if not ok then f("integrity: %s", err.message) end
  if s.key_id and s.key_state ~= "match" then
    f("sealed values: not checked: %s", s.key_state == "missing"
      and "the store is sealed and neither GHLUA_STORE_KEY nor GHLUA_STORE_KEY_FILE is set"
      or s.key_state == "wrong" and ("the key set (id %s) is not the store's (id %s)"):format(s.env_key_id, s.key_id)
      or ("the key set is unusable: " .. tostring(s.key_error)))
  end
  local apps = e:list_apps() or {}
  local tokens = e:find_tokens {} or {}
  if not s.key_id and s.engine_name ~= "sqlite" and (#apps > 0 or #tokens > 0) then
    f("sealing: a %s store holds secrets unsealed; set GHLUA_STORE_KEY", s.engine_name)
  end
  local names = {}
  for _, a in ipairs(apps) do
    names[a.name] = true
    if s.key or not s.key_id then
      local r, why = s:open_row("app", a)
      if not r then f("app %s: %s", a.name, why.message) end
    end
  end
  local now = require("ghl.sys").time()
  for _, r in ipairs(tokens) do
    local id = r.app .. " " .. r.resource_type .. " " .. r.resource_id
    if s.key or not s.key_id then
      local ok2, why = s:open_row("token", r)
      if not ok2 then f("token %s: %s", id, why.message) end
    end
    if r.kind ~= "pit" and not names[r.app] and os.getenv("GHL_CLIENT_ID") ~= r.app then
      f("token %s: its app '%s' is not stored, so it cannot be refreshed (add it with 'ghlua app add %s', or set GHL_CLIENT_ID and GHL_CLIENT_SECRET)",
        id, r.app, r.app)
    end
    -- A stale claim matters only past phase "claimed": then the refresh
    -- token may have been sent. One left in "claimed" sent nothing, and
    -- the next refresh takes it over, so it is no finding.
    local c = e:claim_of(r.app, r.resource_id)
    if c and (c.reason == "expired" or c.reason == "dead") and c.phase ~= "claimed" then
      f("claim on %s: held by process %d in phase '%s', %s %ds ago; the refresh token may be spent: run 'ghlua auth doctor'",
        id, c.pid or 0, c.phase, c.reason == "dead" and "which died; started" or "lease expired",
        math.floor(now - (c.reason == "dead" and c.started_at or c.lease_until)))
    end
  end
  return found
end

local function check(argv)
  parse(argv, SUB.check.flags)
  local h = inspect()
  local found = M.findings(h)
  for _, line in ipairs(found) do out(line, "\n") end
  if #found > 0 then
    io.stderr:write(("ghlua: %d finding%s in token store %s\n"):format(#found, #found == 1 and "" or "s", M.location(h.path)))
    return 1
  end
  out(("ok: %s store %s\n"):format(h.raw.engine_name, M.location(h.path)))
  return 0
end

-- ---- seal ----

local function need_key(what)
  local key, where = seal.key_from_env()
  if not key then
    E.raise { kind = "usage", message = what .. " needs the store key, and GHLUA_STORE_KEY is not set",
      hint = "set GHLUA_STORE_KEY or GHLUA_STORE_KEY_FILE; 'ghlua store key new' makes a key" }
  end
  return key, where
end

local function seal_cmd(argv)
  parse(argv, SUB.seal.flags)
  local key = need_key("store seal")
  local h = auth.open_at(config.store_path(), { unsealed_ok = true })
  if h.raw.key then
    -- Sealed already: seal what a process that opened it before the seal
    -- wrote in clear since.
    local na, nt = seal.seal_in_place(h.raw, key)
    out(("token store %s is sealed already (key id %s)%s\n"):format(M.location(h.path), h.raw.key_id,
      (na + nt == 0) and "" or (", and held values in clear: sealed %d app secret%s, %d token%s"):format(
        na, na == 1 and "" or "s", nt, nt == 1 and "" or "s")))
    return 0
  end
  local na, nt = seal.seal_in_place(h.raw, key)
  out(("sealed token store %s: %d app secret%s, %d token%s (key id %s)\n"):format(M.location(h.path),
    na, na == 1 and "" or "s", nt, nt == 1 and "" or "s", h.raw.key_id))
  return 0
end

-- ---- migrate ----

local APP_KEYS = { "name", "client_id", "client_secret", "redirect_uri", "scopes", "whitelabel", "user_type" }
local EVENT_KEYS = { "id", "type", "location_id", "company_id", "received_at", "body", "headers", "verified",
                     "status", "note" }

local function pick(t, keys)
  local o = {}
  for _, k in ipairs(keys) do o[k] = t[k] end
  return o
end

M.CLAIM_LEASE = 5   -- seconds a copied claim is held by the copying process (gone when it exits)

local function migrate(argv)
  local o = parse(argv, SUB.migrate.flags)
  if not o.to or o.to == "" then args.usage("missing --to URL|PATH", current) end
  local from = config.store_path()
  if o.to == from then args.usage("--to names the current store itself", current) end
  local src = auth.open_at(from, { unsealed_ok = true })
  local s, se = src.raw, src.native
  -- Read everything first (secrets opened with the key), then refuse
  -- what must not be copied, before the target is touched.
  local apps, e1 = s:list_apps()
  if not apps then error(e1, 0) end
  local toks, e2 = s:find_tokens {}
  if not toks then error(e2, 0) end
  local bad = {}
  for _, a in ipairs(apps) do if a.unreadable then bad[#bad + 1] = "app " .. a.name end end
  for _, r in ipairs(toks) do if r.unreadable then bad[#bad + 1] = "token " .. r.app .. " " .. r.resource_id end end
  if #bad > 0 then
    E.raise { kind = "store", code = "unreadable",
      message = ("%d row%s of %s do%s not open (%s); nothing was copied"):format(#bad, #bad == 1 and "" or "s",
        M.location(src.path), #bad == 1 and "es" or "", table.concat(bad, ", ")),
      hint = "run 'ghlua store check' and fix them first" }
  end
  local claims = {}
  for _, r in ipairs(toks) do
    local c = assert(se:claim_of(r.app, r.resource_id) or true)
    if c ~= true then
      if not c.reason then
        E.raise { kind = "store", message = ("process %d is refreshing %s %s right now (phase %s)"):format(
          c.pid or 0, r.app, r.resource_id, c.phase), hint = "run 'ghlua store migrate' again once it is done" }
      end
      claims[#claims + 1] = { app = r.app, rid = r.resource_id, phase = c.phase }
    end
  end
  local kvs = assert(se:kv_list())
  local events = assert(se:list_events {})
  local before = M.counts(src)
  local dst = auth.open_at(o.to)
  local d = dst.raw
  local held_apps, held_toks = assert(d:list_apps()), assert(dst.native:find_tokens {})
  if #held_apps > 0 or #held_toks > 0 then
    E.raise { kind = "store", code = "not_empty",
      message = ("target store %s already holds %d app%s and %d token%s; nothing was copied"):format(
        M.location(dst.path), #held_apps, #held_apps == 1 and "" or "s", #held_toks, #held_toks == 1 and "" or "s"),
      hint = "migrate into an empty store" }
  end
  assert(d:transaction(function(t)
    for _, a in ipairs(apps) do assert(t:put_app(pick(a, APP_KEYS))) end
    for _, r in ipairs(toks) do assert(t:put_token(r)) end
    for _, kv in ipairs(kvs) do
      if not (kv.ns == seal.NS and kv.key == seal.KEY) then assert(t:kv_put(kv.ns, kv.key, kv.value)) end
    end
    for _, ev in ipairs(events) do assert(t:put_event(pick(ev, EVENT_KEYS)) ~= nil) end
    for _, c in ipairs(claims) do
      assert(t:claim(c.app, c.rid, M.CLAIM_LEASE))
      if c.phase ~= "claimed" then assert(t:claim_phase(c.app, c.rid, c.phase)) end
    end
  end))
  local after = M.counts(dst)
  if not same(before, after) then
    E.raise { kind = "store", code = "counts",
      message = ("the counts differ after the copy to %s: apps %d/%d, tokens %d/%d, claims %d/%d, events %d/%d, kv %d/%d"):format(
        M.location(dst.path), before.apps, after.apps, before.tokens, after.tokens, before.claims, after.claims,
        before.events, after.events, before.kv, after.kv),
      hint = "run 'ghlua store check' on both; the source was not changed" }
  end
  out(("copied %s to %s (%s): apps %d, tokens %s, claims %s, events %d, kv %d%s\n"):format(
    M.location(src.path), M.location(dst.path), d.engine_name, after.apps, breakdown(after.tokens, after.token_kinds),
    breakdown(after.claims, after.claim_phases), after.events, after.kv,
    d.key_id and (", secrets sealed (key id " .. d.key_id .. ")") or ", secrets not sealed"))
  out("the source is unchanged; point GHLUA_STORE at the target to use it\n")
  return 0
end

-- ---- key new ----

local function key_new(argv)
  parse(argv, KEY_NEW.flags, KEY_NEW.usage)
  out(seal.new_key(), "\n")
  io.stderr:write("ghlua: keep this key in a file of mode 0600 (GHLUA_STORE_KEY_FILE) or a secret manager"
    .. " (GHLUA_STORE_KEY); a store sealed with it cannot be read without it\n")
  return 0
end

function M.run(argv)
  local sub = table.remove(argv, 1)
  current = SUB[sub] and SUB[sub].usage or require("ghl.cli.commands").usage_of(M, { "store" })
  if sub == "info" then return info(argv) end
  if sub == "check" then return check(argv) end
  if sub == "seal" then return seal_cmd(argv) end
  if sub == "migrate" then return migrate(argv) end
  if sub == "key" then
    local w = table.remove(argv, 1)
    if w == "new" then return key_new(argv) end
    args.usage(w and ("unknown store key subcommand '" .. w .. "'") or "missing store key subcommand", KEY_NEW.usage)
  end
  args.usage(sub and ("unknown store subcommand '" .. sub .. "'") or "missing store subcommand", current)
end

return M
