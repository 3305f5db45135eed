-- `ghlua auth doctor`: explain what is wrong with the stored tokens and
-- what to run. It reads what every process recorded in the store (spent or
-- uncertain refresh tokens, inactive locations, refused scopes, wrong token
-- types, interrupted refreshes) and tries a refresh where one is due. A
-- token whose refresh token may be spent is recovered (unless --offline)
-- the way ghl.auth does it, without presenting that refresh token. Then,
-- unless --offline, each token that looks usable is tried with one cheap
-- call (ghl.cli.auth.online; several at a time), and doctor reports what
-- the API says: valid, invalid (an OAuth token is then refreshed once, and
-- tried again), the location not active, another location's token, or the
-- API unreachable at the base URL. Tokens are reported in the store's
-- order. Exit status 0 when everything is usable, 1 otherwise.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local common = require "ghl.cli.auth.common"
local online = require "ghl.cli.auth.online"
local E = require "ghl.error"

local M = {}

M.summary = "explain token problems and what to run (checks each token online)"
M.usage = "ghlua auth doctor [--app NAME] [--offline]"
M.help = [[
Read what every process recorded in the token store (spent or uncertain
refresh tokens, inactive locations, refused scopes, wrong token types,
interrupted refreshes), refresh the tokens that are due, and say for each
problem what to run. A token whose refresh token may be spent is recovered
through the Reconnect API, unless --offline (then nothing is sent).
--app NAME looks at that app's tokens only.

Exit status: 0 every token is usable, 1 otherwise.
]]
M.flags = { app = args.APP, offline = "flag" }

M.help = [[
Explain what is wrong with the stored tokens and what to run. Without
--offline, a refresh is tried where one is due, a spent refresh token is
recovered, and each token is tried with one cheap authenticated call (a GET
of its location, or of its company's locations), several at a time; the
report says what the API answered.

  --app NAME    only the tokens of this app
  --offline     only read the store: no refresh, no call

Exit status: 0 when every token is usable, 1 otherwise.
]]

local out   -- the lines of the token being diagnosed (printed in order at the end)

local function emit(s)
  out[#out + 1] = s
end

local function say(row, problem, fix)
  emit(E.sanitize(("%s %s (app %s): %s\n  fix: %s"):format(row.resource_type, row.resource_id, row.app,
    problem, fix), true) .. "\n")
end

local function flag(row)
  return "--" .. row.resource_type:lower() .. " " .. row.resource_id
end

-- The refresh token of `row` may be spent: say so and, unless offline,
-- recover it now the way every process would, never presenting that
-- refresh token (a Company token mints it again, or the Reconnect API).
-- Returns true when the token is usable again.
local function recover(row, problem, fix, offline)
  if offline then say(row, problem, fix); return false end
  local ok, r = pcall(auth.refresh, row, { force = true })
  if not ok then
    say(row, problem .. "; recovering it failed: " .. tostring(E.is(r) and r.message or r), fix)
    return false
  end
  emit(("%s %s (app %s): %s\n  recovered: %s\n"):format(row.resource_type, row.resource_id, row.app,
    problem, r.note or "new pair stored"))
  return true
end

local function diagnose(row, offline)
  local note = row.note and (" (" .. row.note .. ")") or ""
  if row.kind ~= "pit" then
    local a = auth.app(row.app, true)
    if not a then
      say(row, "its app '" .. row.app .. "' is not stored, so it cannot be refreshed",
          "run 'ghlua app add " .. row.app .. " --client-id ID --redirect-uri URI', or set GHL_CLIENT_ID and GHL_CLIENT_SECRET")
      return false
    end
  end
  local reconnect = "run 'ghlua auth reconnect " .. flag(row) .. "' to get a new pair without the user"
  if row.status == "spent" then
    return recover(row, "its refresh token was refused as already used or revoked" .. note ..
        (row.previous_refreshed_at and ("; the previous one was replaced at " .. common.stamp(row.previous_refreshed_at)) or ""),
        "run 'ghlua auth reconnect " .. flag(row) .. "' (no browser needed), or 'ghlua auth login' again", offline)
  elseif row.status == "uncertain" then
    return recover(row, "a refresh was interrupted after the refresh token was sent" .. note, reconnect, offline)
  end
  if row.kind ~= "pit" then
    -- a refresh or recovery whose process died, leaving its claim behind
    local c = auth.store():claim_of(row.app, row.resource_id)
    if c and c.phase ~= "claimed" and (c.reason == "dead" or c.reason == "expired") then
      return recover(row, ("a refresh by process %d (started %s) stopped in phase '%s' before saving its answer, so the refresh token may be spent")
        :format(c.pid, common.stamp(c.started_at), c.phase), reconnect, offline)
    end
  end
  if row.status == "inactive" then
    say(row, "HighLevel says the location is not active (paused or suspended)" .. note,
        "reactivate the sub-account in HighLevel; the same refresh token works again afterwards")
    return false
  elseif row.status == "uninstalled" then
    say(row, "the app was uninstalled from it" .. note, "install it again with 'ghlua auth login'")
    return false
  end
  if row.note and row.note:find("not authorized for this scope", 1, true) then
    say(row, "a call was refused for a missing scope" .. note,
        "add the scope to the app in the marketplace, then 'ghlua auth login --scopes ...' again")
    return false
  end
  if row.note and row.note:find("authClass", 1, true) then
    say(row, "a Company (agency) token was used on a sub-account route" .. note,
        "use a Location token: 'ghlua auth token --location ID' mints one from the agency token")
    return false
  end
  if row.kind ~= "pit" and not auth.fresh(row) and not offline then
    local ok, err = pcall(auth.refresh, row)
    if not ok then
      say(row, "it is expired and the refresh failed: " .. tostring(err),
          E.is(err) and err.hint or "run with GHLUA_DEBUG=1 and report the error")
      return false
    end
  end
  return true
end

-- Try the stored token of row online (ghl.cli.auth.online). An OAuth
-- token the API calls invalid is refreshed once (ghl.auth: its rules about
-- spent refresh tokens apply) and tried again.
local function check(s, row)
  local function try(cur)
    return online.check { token = cur.access_token or "", type = cur.resource_type, id = cur.resource_id,
                          scopes = cur.kind ~= "pit" and cur.scope or nil, pit = cur.kind == "pit" }
  end
  local cur = s:get_token(row.app, row.resource_id) or row
  local r = try(cur)
  if r.state ~= "invalid" or cur.kind == "pit" then return r end
  local ok, fresh = pcall(auth.refresh, cur, { force = true, stale = cur.access_token })
  if not ok then
    r.says = r.says .. "; a refresh failed too: " .. tostring(E.is(fresh) and fresh.message or fresh)
    r.fix = E.is(fresh) and fresh.hint or r.fix
    return r
  end
  local again = try(fresh)
  if again.ok then again.note = "recovered: the access token was refused, and a refresh got a new pair" end
  return again
end

-- What to do about a store that cannot be used: err is the store's error
-- (kind "store" or "permissions"; code "corrupt", "notadb", "busy", ...).
local function store_fix(err, path)
  local q = require("ghl.util").shell_quote(path)
  if err.kind == "permissions" then
    local cmd = tostring(err.message):match("run: (.+)$")
    return err.hint or (cmd and ("run '" .. cmd .. "'")) or "make the store private to you (chmod 600, its directory 700)"
  end
  if err.code == "corrupt" or err.code == "notadb" then
    return ("its tokens cannot be read: move it aside with 'mv %s %s.damaged', then store the app again"
      .. " ('ghlua app add') and log in again ('ghlua auth login'); sqlite3's .recover command may save"
      .. " rows it still holds"):format(q, q)
  elseif err.code == "foreign" then
    return "point GHLUA_HOME (or GHLUA_STORE) at another place, or move the file aside"
  elseif err.code == "version" then
    return "use the newer ghlua that wrote it, or move the file aside"
  elseif err.code == "busy" or err.code == "locked" then
    return "another process keeps the store locked: find it with 'fuser " .. q .. "', stop it, then try again"
  elseif err.code == "full" then
    return "free some disk space, then try again"
  elseif err.code == "readonly" or err.code == "cantopen" then
    return "make the file and its directory writable by you, then try again"
  end
  return "see the message; run with GHLUA_DEBUG=1 if it is unclear"
end

-- Explain a store that cannot be used; exit status 1.
local function store_problem(err, path)
  io.stdout:write(E.sanitize(E.is(err) and err.message or err), "\n  fix: ", E.sanitize(store_fix(err, path)), "\n")
  return 1
end

local function store_error(e)
  return E.is(e) and (e.kind == "store" or e.kind == "permissions")
end

function M.run(argv)
  local o = args.parse(argv, M.flags, M.usage)
  local path = require("ghl.config").store_path() or "the token store"
  local ok, s = pcall(auth.store)
  if not ok then
    if store_error(s) then return store_problem(s, path) end
    error(s, 0)
  end
  local rows, err = s.raw:check()
  if rows then rows, err = s.raw:find_tokens { app = o.app } end
  if not rows then return store_problem(err, s.path) end
  io.stdout:write("store: ", s.path, " (permissions ok, integrity ok)\n")
  if #rows == 0 then
    io.stdout:write("no tokens stored: run 'ghlua auth login' (OAuth) or 'ghlua auth pit add' (Private Integration Token)\n")
    return 1
  end
  -- the store's view, one token after the other (a refresh or recovery
  -- may run), each token's lines kept for the report
  local reports, usable, checks = {}, {}, {}
  for i, row in ipairs(rows) do
    out = {}
    usable[i] = diagnose(row, o.offline)
    reports[i] = out
    if usable[i] and not o.offline then checks[#checks + 1] = i end
  end
  -- the API's view, several tokens at a time
  local fns = {}
  for k, i in ipairs(checks) do
    fns[k] = function() return check(s, rows[i]) end
  end
  local said = {}
  for k, r in ipairs(#fns > 0 and online.check_all(fns) or {}) do said[checks[k]] = r end
  local bad = 0
  for i, row in ipairs(rows) do
    io.stdout:write(table.concat(reports[i]))
    local r = said[i]
    if usable[i] and (not r or r.ok) then
      local cur = s:get_token(row.app, row.resource_id) or row
      io.stdout:write("ok: ", E.sanitize(common.line(cur)), "\n")
      if r then io.stdout:write(E.sanitize("  checked online: " .. r.says .. (r.note and ("; " .. r.note) or "")), "\n") end
    else
      if r then
        out = {}
        say(row, r.says, r.fix)
        io.stdout:write(table.concat(out))
      end
      bad = bad + 1
    end
  end
  return bad > 0 and 1 or 0
end

return M
