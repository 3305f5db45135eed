-- ghl.auth: tokens that look after themselves. It owns the token store
-- (ghl.store), finds the app and token for a location or company, refreshes
-- before expiry and on "401 Invalid JWT", mints location tokens from an
-- agency (Company) token, and keeps rotated refresh tokens safe across
-- processes with the store's per-resource claim:
--   1. claim the resource (short transaction), 2. re-read the token: if
--   another process refreshed it, use that, 3. mark the claim "sending" and
--   call /oauth/token with no transaction open, 4. commit the new pair and
--   release the claim in one durable transaction.
-- A claim left in phase "sending" (or "recovering") by a process that died,
-- a refresh whose outcome is unknown (a 5xx, a timeout, a reset once it
-- was sent) and a refresh token refused as used all mean HighLevel may have
-- rotated the refresh token, so it is never presented again: the token is
-- marked "uncertain" (or "spent") in the store first, then the location
-- token is minted anew from the Company token, or the Reconnect API is
-- used, or `ghlua auth doctor` explains it. A takeover keeps the phase of
-- the claim it took over (ghl.store), so any number of processes killed in
-- a row during a recovery never lead to the old refresh token.
-- Coroutines of one process (ghl.parallel) take turns per resource.
-- Expected failures raise ghl.error objects with a hint.
local E = require "ghl.error"
local oauth = require "ghl.oauth"
local sys = require "ghl.sys"
local loop = require "ghl.loop"

local M = {}

M.SKEW = 300          -- refresh this many seconds before expiry (at most)
M.LEASE = 60          -- seconds a refresh claim lasts without renewal
M.WAIT = 90           -- seconds to wait for another process's refresh

local db

-- Methods whose callers decide on every failure themselves (commit retries
-- a busy store): the checked handle returns their nil, err unchanged.
local RETURNS_ERR = { commit_refresh = true }

-- A store engine's handle (ghl.store's, or another engine's with the same
-- methods) under the sealing layer (ghl.seal: secrets are sealed on the
-- way in and opened on the way out when the store has a key; a missing or
-- wrong key raises here, before anything is written), whose methods raise
-- what the engine returns as nil, err (a damaged or locked store, a full
-- disk), so no caller can take a failure for "nothing stored". A lost
-- refresh claim (kind "claim") is an outcome, not a failure, and is still
-- returned. h.raw is the sealing handle, returning nil, err, for callers
-- that answer store failures themselves; h.native the engine's own;
-- h.path works. opts go to ghl.seal.wrap.
function M.checked(engine, opts)
  local raw = require("ghl.seal").wrap(engine, opts)
  local wrapped = {}
  return setmetatable({ raw = raw, native = engine }, {
    __index = function(_, k)
      local v = raw[k]
      if type(v) ~= "function" then return v end
      local f = wrapped[k]
      if not f then
        f = function(_, ...)
          local r = table.pack(v(raw, ...))
          if r[1] == nil and E.is(r[2]) and r[2].kind ~= "claim" and not RETURNS_ERR[k] then error(r[2], 0) end
          return table.unpack(r, 1, r.n)
        end
        wrapped[k] = f
      end
      return f
    end,
    __tostring = function() return tostring(raw) end,
  })
end

-- The process's store (ghl.config.store_path()), opened on first use by
-- M.open_at, as a checked handle.
function M.store()
  if not db then db = M.open_at(require("ghl.config").store_path()) end
  return db
end

-- Drop the cached store handle (tests, or after `auth logout --all`).
function M.close()
  if db then db:close(); db = nil end
end

-- open_at(location [, opts]) -> a checked handle on the store at location
-- (a SQLite file path or a PostgreSQL connection string): the one opener,
-- for the process's own store (M.store), `ghlua store`'s and migrate's
-- target. A failure raises the engine's error (the engine is closed).
-- opts go to ghl.seal.wrap.
function M.open_at(location, opts)
  local engine, err = require("ghl.store").open(location)
  if not engine then error(err, 0) end
  local ok, h = pcall(M.checked, engine, opts)
  if not ok then engine:close(); error(h, 0) end
  return h
end

-- A listed row whose secrets do not open (ghl.seal lists it with
-- unreadable = why): refused alone, with its fix; other rows stay usable.
local function readable(row)
  if row and row.unreadable then
    E.raise { kind = "store", code = "unreadable", message = row.unreadable, hint = row.unreadable_hint }
  end
  return row
end
M.readable = readable

local function fail(msg, hint, extra)
  local t = extra or {}
  t.kind, t.message, t.hint = t.kind or "auth", msg, hint
  E.raise(t)
end

-- ---- Apps ----

-- The app named `name`, or the only stored app, or one from the
-- environment (GHL_CLIENT_ID, GHL_CLIENT_SECRET, GHL_REDIRECT_URI), named by
-- its client id. Returns nil when there is none and `optional` is set.
function M.app(name, optional)
  local s = M.store()
  if name then
    local a = s:get_app(name)
    if a then return a end
    local env = M.env_app()
    if env and (env.name == name or env.client_id == name) then return env end
    if optional then return nil end
    fail("no app named '" .. name .. "'", "add it with 'ghlua app add " .. name .. " --client-id ID --redirect-uri URI'",
         { kind = "usage" })
  end
  local env = M.env_app()
  if env then return env end
  local apps = s:list_apps()
  if #apps == 1 then return readable(apps[1]) end
  if optional then return nil end
  if #apps == 0 then
    fail("no app configured", "run 'ghlua app add NAME --client-id ID --redirect-uri URI', or set GHL_CLIENT_ID and GHL_CLIENT_SECRET",
         { kind = "usage" })
  end
  local names = {}
  for _, a in ipairs(apps) do names[#names + 1] = a.name end
  fail("several apps are stored (" .. table.concat(names, ", ") .. ")",
       { lua = "choose one with app = NAME (ghl.client{app = NAME})", cli = "choose one with --app NAME" }, { kind = "usage" })
end

-- An app described by the environment, or nil.
function M.env_app()
  local id = os.getenv("GHL_CLIENT_ID")
  if not id or id == "" then return nil end
  return { name = id, client_id = id, client_secret = os.getenv("GHL_CLIENT_SECRET"),
           redirect_uri = os.getenv("GHL_REDIRECT_URI"), from_env = true }
end

-- The secret of app `a`: stored, or GHL_CLIENT_SECRET for the same client.
local function secret_of(a)
  if a.client_secret and a.client_secret ~= "" then return a.client_secret end
  local s = os.getenv("GHL_CLIENT_SECRET")
  if s and s ~= "" then return s end
  fail("no client secret for app '" .. a.name .. "'",
       "set GHL_CLIENT_SECRET, or store it with 'ghlua app add " .. a.name .. " ...'", { kind = "usage" })
end
M.secret_of = secret_of

-- ---- Saving tokens ----

-- Store a token-endpoint answer `tok` for app `a`; returns the row.
function M.save(a, tok, extra)
  extra = extra or {}
  local user_type = tok.userType or extra.user_type or (tok.locationId and "Location" or "Company")
  local rid = user_type == "Location" and (tok.locationId or extra.location_id) or (tok.companyId or extra.company_id)
  if not rid then
    fail("the token answer names no location or company", "this is unexpected; run with -v to see the reply")
  end
  local row = {
    app = a.name, resource_type = user_type, resource_id = rid, kind = "oauth",
    access_token = tok.access_token, refresh_token = tok.refresh_token,
    expires_at = sys.time() + (tonumber(tok.expires_in) or 86399),
    scope = tok.scope, requested_scope = extra.requested_scope,
    company_id = tok.companyId or extra.company_id, location_id = tok.locationId,
    user_id = tok.userId, user_type = user_type, status = "ok",
  }
  assert(M.store():put_token(row))
  return M.store():get_token(a.name, rid)
end

-- ---- Finding tokens ----

local function describe(q)
  return q.location and ("location " .. q.location) or q.company and ("company " .. q.company) or "any resource"
end

M.SHOW = 5   -- matches named in "several tokens match"

-- The "several tokens match" error for query q and its matching rows: a
-- few of them (with the location names `ghlua auth locations` saw), and
-- the flag that picks one: --location or --company when they are for
-- different resources, --app when one resource has tokens of several
-- apps. It is read on the command line, so it names flags.
local function several(q, rows)
  local names = require("ghl.locations").names(rows)
  -- agencies first, then the store's order (app, id)
  local order = {}
  for i, r in ipairs(rows) do order[i] = { r = r, i = i } end
  table.sort(order, function(x, y)
    local xc, yc = x.r.resource_type == "Company", y.r.resource_type == "Company"
    if xc ~= yc then return xc end
    return x.i < y.i
  end)
  local shown, apps_of, resources, loc_row, co_row = {}, {}, 0, nil, nil
  for i, o in ipairs(order) do
    local r = o.r
    if i <= M.SHOW then
      shown[i] = r.app .. " " .. r.resource_type .. " " .. r.resource_id
        .. (names[r.resource_id] and (" '" .. names[r.resource_id] .. "'") or "")
    end
    local key = r.resource_type .. " " .. r.resource_id
    if not apps_of[key] then apps_of[key] = {}; resources = resources + 1 end
    table.insert(apps_of[key], r.app)
    if r.resource_type == "Location" then loc_row = loc_row or r else co_row = co_row or r end
  end
  if #rows > M.SHOW then shown[#shown + 1] = ("and %d more"):format(#rows - M.SHOW) end
  local how, lua = {}, {}
  if resources > 1 then
    how[1] = loc_row and ("--location ID (or GHL_LOCATION_ID), e.g. --location " .. loc_row.resource_id)
      or ("--company ID, e.g. --company " .. co_row.resource_id)
    lua[1] = loc_row and ("location = ID (or GHL_LOCATION_ID), e.g. ghl.client{location = \"%s\"}"):format(loc_row.resource_id)
      or ("company = ID, e.g. ghl.client{company = \"%s\"}"):format(co_row.resource_id)
  end
  for _, apps in pairs(apps_of) do
    if #apps > 1 then
      how[#how + 1] = ("--app NAME (%s)"):format(table.concat(apps, ", "))
      lua[#lua + 1] = ("app = NAME (%s)"):format(table.concat(apps, ", "))
      break
    end
  end
  local what = (q.location or q.company) and ("%d tokens match " .. describe(q))
    or "no location or company was named, and %d tokens are stored"
  fail(what:format(#rows) .. ": " .. table.concat(shown, ", "),
       { cli = "choose one with " .. table.concat(how, ", and "), lua = "choose one with " .. table.concat(lua, ", and ") },
       { kind = "usage", code = "several_tokens" })
end

-- find{location=, company=, app=} -> the stored token row, or nil plus
-- the Company row that could mint it (for a location).
function M.find(q)
  local s = M.store()
  if q.location == nil and q.company == nil then
    local gl = os.getenv("GHL_LOCATION_ID")
    if gl and gl ~= "" then return M.find { location = gl, app = q.app } end
  end
  local rows = s:find_tokens { app = q.app, location = q.location, company = q.company }
  if #rows == 1 then return readable(rows[1]) end
  if #rows > 1 then
    -- prefer OAuth over PIT, then the app asked for
    if q.location or q.company then
      local sorted = table.move(rows, 1, #rows, 1, {})
      table.sort(sorted, function(a, b) return (a.kind == "oauth") and b.kind ~= "oauth" end)
      if sorted[1].kind ~= sorted[2].kind then return readable(sorted[1]) end
    end
    several(q, rows)
  end
  if q.location then
    local companies = s:find_tokens { app = q.app, kind = "oauth" }
    for _, r in ipairs(companies) do
      if r.resource_type == "Company" then return nil, readable(r) end
    end
  end
  return nil
end

-- ---- Refresh ----

local function lifetime_skew(row)
  local life = (row.expires_at or 0) - (row.refreshed_at or row.created_at or 0)
  if life <= 0 then return M.SKEW end
  return math.min(M.SKEW, life / 4)
end

local function fresh(row)
  return row.kind == "pit" or (row.expires_at and row.expires_at - sys.time() > lifetime_skew(row))
end
M.fresh = fresh

local function fields_of(tok, note)
  return { access_token = tok.access_token, refresh_token = tok.refresh_token,
           expires_at = sys.time() + (tonumber(tok.expires_in) or 86399),
           scope = tok.scope, status = "ok", note = note }
end

local function stamp(t)
  return require("ghl.util").iso8601(t)
end

-- ---- One task at a time per resource, inside this process ----

-- The store's claim belongs to a process, and coroutines of one process
-- (ghl.parallel) share it, so they take turns here: key -> the coroutine
-- refreshing, recovering or minting that resource. A waiter inside a
-- scheduler yields until the holder is done (its <close> releases the
-- entry however it ends, coroutine.close included), for M.WAIT at most.
-- A waiter on the main thread, or one whose holder is dead, cannot see the
-- holder progress and goes on at once: the store then reports the holder's
-- unfinished phase (claim prev.reason "own"), so a refresh token that may
-- have been sent is still never presented again.
local busy = {}

local function exclusive(key, f, ...)
  local me, main = coroutine.running()
  local deadline = sys.now() + M.WAIT
  while busy[key] and busy[key] ~= me and not main and coroutine.status(busy[key]) ~= "dead"
        and sys.now() < deadline do
    loop.sleep(0.01)
  end
  if busy[key] == me then return f(...) end   -- re-entered by its holder
  busy[key] = me
  local _ <close> = setmetatable({}, { __close = function()
    if busy[key] == me then busy[key] = nil end
  end })
  return f(...)
end

-- ---- Location tokens from an agency token ----

-- mint(crow, location_id) -> the token-endpoint answer: a Location token
-- minted from Company row `crow` (throttled in the Company's bucket).
local function mint(crow, location_id)
  if crow.kind == "pit" then
    fail("a Private Integration Token cannot mint location tokens",
         "HighLevel accepts only an agency OAuth token on /oauth/locationToken: log in with 'ghlua auth login --user-type Company'")
  end
  local a = M.app(crow.app, true)
  local ctoken = M.token { app = crow.app, company = crow.resource_id }
  return oauth.location_token { access_token = ctoken, company_id = crow.resource_id, location_id = location_id,
                                client_id = a and a.client_id or nil }
end
M.mint = mint

-- mint_stored(crow, location_id [, keep]) -> the stored row of location_id:
-- minted from Company row `crow` and saved, one task of this process at a
-- time per location. A row stored meanwhile (another task minted it) is
-- returned as it is when keep(row) says so (default: any row).
function M.mint_stored(crow, location_id, keep)
  return exclusive("mint\0" .. crow.app .. "\0" .. location_id, function()
    local again = M.store():get_token(crow.app, location_id)
    if again and (not keep or keep(again)) then return again end
    local tok = mint(crow, location_id)
    return M.save(M.app(crow.app), tok, { user_type = "Location", location_id = location_id,
                                          company_id = crow.resource_id })
  end)
end

-- ---- Recovery without presenting a refresh token ----

M.RECOVER_TRIES = 4   -- Reconnect + exchange rounds at most

-- Renew our claim on (a, rid) before a recovery call, so a slow recovery
-- keeps it; raises when another process has taken it over meanwhile.
local function renew(s, a, rid)
  local got, info = s:claim(a.name, rid, M.LEASE)
  if got == nil then error(info, 0) end
  if not got then
    fail(string.format("process %d took over %s while it was being recovered", info.pid or 0, rid),
         "check 'ghlua auth status' in a moment; 'ghlua auth doctor' explains what is left")
  end
end

local function secret_or_nil(a)
  local secret = a.client_secret
  if not secret or secret == "" then secret = os.getenv("GHL_CLIENT_SECRET") end
  if secret and secret ~= "" then return secret end
  return nil
end

-- Reconnect API + exchange of its code for target {location= | company=},
-- RECOVER_TRIES rounds at most: Reconnect only yields a new code each
-- time, so it is retried freely, and a code whose exchange met an unknown
-- outcome is never presented again: the next round gets a new one. keep(),
-- when given, runs before each call (renews our claim). Returns the
-- token-endpoint answer.
local function reconnect_rounds(a, target, keep)
  local secret = secret_of(a)
  local user_type = target.location and "Location" or "Company"
  local last
  for round = 1, M.RECOVER_TRIES do
    if keep then keep() end
    local rc = oauth.reconnect { client_id = a.client_id, client_secret = secret,
      location_id = target.location, company_id = target.company }
    if keep then keep() end
    local ok, tok = pcall(oauth.exchange, { client_id = a.client_id, client_secret = secret,
      code = rc.authorizationCode, user_type = user_type,
      location_id = target.location, company_id = target.company })
    if ok then return tok end
    if not (E.is(tok) and tok.code == "outcome_unknown") then error(tok, 0) end
    last = tok
    if round < M.RECOVER_TRIES then loop.sleep(0.2 * round) end
  end
  E.raise { kind = "oauth", code = "outcome_unknown", where = "oauth.exchange",
    message = string.format("%d Reconnect codes in a row met an unknown outcome (last: %s)", M.RECOVER_TRIES,
      last.message), hint = "HighLevel's token endpoint is failing; try again later" }
end

-- Get a new pair for `row`, whose refresh token may be spent, without
-- presenting it. We hold the claim, and the row's status ("uncertain" or
-- "spent") is durable already, so a process killed at any step below
-- leaves a store that the next process recovers from the same way: mint
-- again from a stored Company token (a Location), else the Reconnect API
-- (reconnect_rounds). Returns the token-endpoint answer and how it was
-- got, or nil when there is no way (no Company token, no client secret).
local function recover(a, row)
  local s = M.store()
  local rid = row.resource_id
  local function keep() renew(s, a, rid) end
  keep()
  assert(s:claim_phase(a.name, rid, "recovering"))
  local first
  if row.resource_type == "Location" then
    for _, r in ipairs(s:find_tokens { app = row.app, kind = "oauth" }) do
      if r.resource_type == "Company" and not r.unreadable then
        local ok, tok = pcall(mint, r, rid)
        if ok then return tok, "minted again from the agency token" end
        if not E.is(tok) then error(tok, 0) end
        first = tok
        break
      end
    end
  end
  if not secret_or_nil(a) then
    if first then error(first, 0) end
    return nil
  end
  local target = row.resource_type == "Location" and { location = rid } or { company = rid }
  return reconnect_rounds(a, target, keep), "recovered through the Reconnect API"
end

-- We hold the claim on `row` and its status says the refresh token may be
-- spent (durably): recover it and commit, or release the claim and raise
-- why it stays unusable.
local function recover_claimed(a, row)
  local s = M.store()
  local name, rid = a.name, row.resource_id
  local ok, tok, how = pcall(recover, a, row)
  if ok and tok then
    M.commit(name, rid, fields_of(tok, how .. " at " .. stamp()))
    return s:get_token(name, rid)
  end
  s:release(name, rid)
  if not ok and not E.is(tok) then error(tok, 0) end
  local cur = s:get_token(name, rid) or row
  fail(string.format("the refresh token of %s %s may be spent (%s)%s", row.resource_type, rid,
                     cur.note or "interrupted refresh", ok and "" or ("; recovering it failed: " .. tok.message)),
       string.format("run 'ghlua auth reconnect --%s %s', or log in again", row.resource_type:lower(), rid),
       { code = "spent", cause = ok and nil or tok })
end

local STATUS = { invalid_grant = "spent", location_inactive = "inactive" }

-- Refresh `row`, whose claim we hold, and commit. Returns the new row.
-- `took_over` describes the claim we took (a dead process's, or our own
-- unfinished one), if any. The refresh token is presented only when no
-- earlier attempt may have presented it; otherwise, and after an unknown
-- outcome, "may be spent" is written to the store before any recovery call.
local function refresh_claimed(a, row, took_over)
  local s = M.store()
  local name, rid = a.name, row.resource_id
  local function mark(status, note)
    local ok, err = s:set_status(name, rid, status, note)
    if ok == nil then s:release(name, rid); error(err, 0) end
  end
  if (took_over and took_over.phase ~= "claimed") or row.status == "spent" or row.status == "uncertain" then
    -- The refresh token may have been presented already: never again.
    if row.status ~= "spent" and row.status ~= "uncertain" then
      mark("uncertain", string.format(
        "a refresh by process %d (started %s) stopped in phase '%s' before saving its answer, so the refresh token may be spent",
        took_over.pid or 0, stamp(took_over.started_at), took_over.phase))
    end
    return recover_claimed(a, row)
  end
  assert(s:claim_phase(name, rid, "sending"))
  local ok, r = pcall(oauth.refresh, { client_id = a.client_id, client_secret = secret_of(a),
    refresh_token = row.refresh_token, user_type = row.resource_type,
    location_id = row.resource_type == "Location" and rid or nil,
    company_id = row.resource_type == "Company" and rid or nil })
  if ok then
    M.commit(name, rid, fields_of(r))
    return s:get_token(name, rid)
  end
  local err = r
  if not E.is(err) then s:release(name, rid); error(err, 0) end
  if err.code == "outcome_unknown" then
    -- a 5xx, a timeout or a reset once the request was sent: HighLevel
    -- may have rotated it
    mark("uncertain", string.format("the refresh answer was lost at %s (%s), so the refresh token may be spent",
                                    stamp(), err.message))
    return recover_claimed(a, row)
  elseif err.kind == "oauth" and err.code == "invalid_grant" then
    -- spent or revoked: mint again from the agency token, or reconnect
    mark("spent", string.format("refresh failed at %s: %s", stamp(), err.message))
    return recover_claimed(a, row)
  elseif err.kind == "interrupted" then
    mark("uncertain", string.format("a refresh was interrupted at %s after it was sent, so the refresh token may be spent",
                                    stamp()))
  elseif err.kind == "oauth" then
    mark(STATUS[err.code] or row.status, string.format("refresh failed at %s: %s", stamp(), err.message))
  end
  -- nothing reached HighLevel (a refused connection, a 429 to the end) or
  -- it refused the request: the refresh token is as it was
  s:release(name, rid)
  error(err, 0)
end

-- Commit a new pair durably. The pair is valid at HighLevel already, so it
-- must not be dropped: a busy store is retried, and a claim lost because
-- our lease ran out (another process took over and will not present the
-- old refresh token) still saves the pair.
function M.commit(name, rid, fields)
  local s = M.store()
  for _ = 1, 6 do
    local ok, err = s:commit_refresh(name, rid, fields)
    if ok then return true end
    if err.kind == "claim" then
      local cur = assert(s:get_token(name, rid))
      cur.previous_refresh_token, cur.previous_refreshed_at = cur.refresh_token, cur.refreshed_at
      cur.refreshed_at, cur.refreshed_by = math.floor(sys.time()), sys.getpid()
      for k, v in pairs(fields) do cur[k] = v end
      if fields.note == nil then cur.note = nil end
      return assert(s:put_token(cur))
    end
    if err.code ~= "busy" then error(err, 0) end
  end
  E.raise { kind = "store", message = "the store stayed locked for a minute while saving a refreshed token",
            hint = "find the process holding " .. s.path .. " open in a transaction" }
end

-- Claim (a, rid), waiting (yielding inside ghl.parallel) while a live
-- process holds it, until done(cur) says another process did the work.
-- Returns true, cur, prev (we hold the claim) or false, cur (done).
local function claim_when_free(a, row, done)
  local s = M.store()
  local deadline = sys.now() + M.WAIT
  local delay = 0.02
  while true do
    local cur = s:get_token(row.app, row.resource_id)
    if not cur then fail("the token for " .. row.resource_type .. " " .. row.resource_id .. " was removed", "log in again") end
    if done(cur) then return false, cur end
    local got, info = s:claim(row.app, row.resource_id, M.LEASE)
    if got == nil then error(info, 0) end
    if got then
      cur = s:get_token(row.app, row.resource_id)
      if done(cur) and not (info and info.phase ~= "claimed") then
        s:release(row.app, row.resource_id)
        return false, cur
      end
      return true, cur, info
    end
    if sys.now() > deadline then
      fail(string.format("process %d has been refreshing %s %s for too long", info.pid or 0, row.resource_type, row.resource_id),
           "try again; if it persists run 'ghlua auth doctor'")
    end
    loop.sleep(delay + math.random() * delay)
    delay = math.min(delay * 2, 0.25)
  end
end

-- refresh(row, {stale=ACCESS_TOKEN, force=}) -> new row. With stale, a row
-- whose access token already differs (another process refreshed) is
-- returned as it is; without, a row that is fresh again is (unless force).
-- A row whose refresh token may be spent is recovered without presenting
-- it (Company token, Reconnect API).
function M.refresh(row, opts)
  opts = opts or {}
  if row.kind == "pit" then return row end
  local a = M.app(row.app)
  return exclusive("refresh\0" .. row.app .. "\0" .. row.resource_id, function()
    local function done(cur)
      if cur.status == "spent" or cur.status == "uncertain" then return false end
      if opts.stale then return cur.access_token ~= opts.stale end
      return not opts.force and fresh(cur)
    end
    local got, cur, info = claim_when_free(a, row, done)
    if not got then return cur end
    return refresh_claimed(a, cur, info)
  end)
end

-- reconnect(a, {location= | company=}) -> the stored row: a new pair for an
-- installed resource through the Reconnect API, under the refresh claim
-- (so it never races a refresh), committed over the stored row or saved as
-- a new one. Its claim phase is "recovering" from the first call on, so a
-- process killed on the way leaves the next one recovering, never
-- presenting the old refresh token.
function M.reconnect(a, target)
  local rid = target.location or target.company
  local rtype = target.location and "Location" or "Company"
  local s = M.store()
  return exclusive("refresh\0" .. a.name .. "\0" .. rid, function()
    local row = s:get_token(a.name, rid)
    if not row then   -- nothing stored to protect
      return M.save(a, reconnect_rounds(a, target),
                    { user_type = rtype, location_id = target.location, company_id = target.company })
    end
    local got, info = s:claim(a.name, rid, M.LEASE)
    if got == nil then error(info, 0) end
    if not got then
      E.raise { kind = "auth", message = ("process %d is refreshing this token right now"):format(info.pid or 0),
                hint = "wait a moment and check 'ghlua auth status'" }
    end
    local ok, tok = pcall(function()
      if info and info.phase ~= "claimed" and row.status ~= "spent" and row.status ~= "uncertain" then
        assert(s:set_status(a.name, rid, "uncertain", string.format(
          "a refresh by process %d (started %s) stopped in phase '%s' before saving its answer, so the refresh token may be spent",
          info.pid or 0, stamp(info.started_at), info.phase)))
      end
      assert(s:claim_phase(a.name, rid, "recovering"))
      return reconnect_rounds(a, target, function() renew(s, a, rid) end)
    end)
    if not ok then
      s:release(a.name, rid)
      error(tok, 0)
    end
    M.commit(a.name, rid, fields_of(tok, "recovered through the Reconnect API at " .. stamp()))
    return s:get_token(a.name, rid)
  end)
end

-- token{location=, company=, app=} -> access_token, row. Refreshes when
-- near expiry (or recovers a token whose refresh token may be spent) and
-- mints location tokens from a Company token on demand.
function M.token(q)
  q = q or {}
  local row, crow = M.find(q)
  if not row and crow and q.location then row = M.mint_stored(crow, q.location) end
  if not row then
    fail("no token for " .. describe(q),
         { cli = "log in with 'ghlua auth login'" .. (q.location and "" or ", or name one with --location ID"),
           lua = "log in with 'ghlua auth login'" .. (q.location and "" or ", or name one: ghl.client{location = ID}") },
         { kind = "auth", code = "no_token" })
  end
  if row.status == "uninstalled" then
    fail("the app was uninstalled from " .. row.resource_type .. " " .. row.resource_id, "install it again with 'ghlua auth login'")
  end
  if not fresh(row) then row = M.refresh(row) end
  return row.access_token, row
end

-- note_refusal(row, where, message): record on the stored token `row`
-- that HighLevel refused a request made with it (a 401 or a 403), keeping
-- its status: "GET /contacts/ was refused at <UTC time>: <message>", the
-- note 'ghlua auth status' shows. ghl.client calls this; the store is
-- written here only.
function M.note_refusal(row, where, message)
  M.store():set_status(row.app, row.resource_id, row.status or "ok",
    ("%s was refused at %s: %s"):format(where, require("ghl.util").iso8601(), tostring(message)))
end

return M
