-- ghl.repl.commands: the REPL's colon commands (M.COMMANDS), run by
-- run(s, ":name args") for session s (ghl.repl.session).
--   :help :whoami :use :scopes :explain :curl :more :quit
--   :save FILE   the session's successful statements as a recipe for
--                `ghlua run`, with the scopes its requests needed (from the
--                operations table) and `writes` set when one wrote.
--   :sim         `ghlua sim` as a child in its own session (Ctrl-C here does
--                not reach it), `client` pointed at it with its token; it
--                is stopped by :sim stop or when the REPL ends.
-- A command's failure raises a ghl.error, which the loop prints like any
-- statement's.
local E = require "ghl.error"
local inspect = require "ghl.inspect"
local sys = require "ghl.sys"
local history = require "ghl.repl.history"
local session = require "ghl.repl.session"
local process = require "ghl.sim.process"

local say, redact, utc = session.say, session.redact, session.utc
local static_token = session.static_token
local READS = session.READS

local M = {}

M.SIM_TIMEOUT = 15
M.SIM_ARGS = { "--contacts", "25", "--opportunities", "10" }

M.shell_quote = require("ghl.util").shell_quote
local shell_quote = M.shell_quote

M.COMMANDS = {
  { "help", "", "this list" },
  { "whoami", "", "the token in use: type, location or company, scopes, expiry" },
  { "use", "LOCATION", "point `client` at another location (no argument: list them)" },
  { "scopes", "[WORD]", "the token's scopes and those this session's requests needed; WORD searches the catalogue" },
  { "explain", "", "the last request: method, URL, Version, token, status, time, rate-limit headroom" },
  { "curl", "", "the last request as a curl command (token redacted)" },
  { "more", "", "print the last result (_) in full, long arrays included" },
  { "save", "FILE", "write this session's successful statements as a recipe (:save! FILE overwrites)" },
  { "sim", "[stop | FLAGS]", "start a local simulator (ghlua sim FLAGS) and point `client` at it" },
  { "quit", "", "leave (Ctrl-D does too)" },
}

local cmd = {}

function cmd.help(s)
  say("Commands:")
  for _, c in ipairs(M.COMMANDS) do
    say(string.format("  %-18s %s", ":" .. c[1] .. (c[2] ~= "" and (" " .. c[2]) or ""), c[3]))
  end
  say("")
  say("Type Lua: an expression is printed (JSON-like), a statement is run; an")
  say("unfinished one continues on the next line. `_` is the last result, `_err`")
  say("the last error; ghl.inspect.all(v) prints v in full.")
  say("`client` (also `c`) is the API client: c:get(path, query), c:post(path, body),")
  say("c:put, c:patch, c:delete, c:paginate(path, params), c:request(method, path, opts).")
  say("Tab completes names, methods, API paths inside c:get(\"/… and scope names.")
  say("Ctrl-C stops a running request, or clears the line; Ctrl-D exits.")
  say("History: " .. (s.history or "off") .. " (lines holding secrets are never written).")
end

local function need_client(s)
  local c = s:current()
  if not c then
    E.raise { kind = "usage", message = "no client in this session",
      hint = "log in with 'ghlua auth login', then :use LOCATION, or type :sim" }
  end
  return c
end

function cmd.whoami(s)
  local c = need_client(s)
  local function line(k, v) say(string.format("%-9s %s", k, v)) end
  if static_token(c) then
    local sim = s.sim and static_token(c) == s.sim.token
    line("token", "static token " .. redact(static_token(c)) .. (sim and " (the simulator's)" or ""))
    if c.location then line("location", c.location) else line("company", tostring(c.company)) end
    line("base", c.base)
    line("scopes", sim and "every scope (a simulator token)" or "not known for a static token")
    line("expires", sim and "never" or "not known")
    return
  end
  local row, crow = s:row_of(c)
  row = row or crow
  if not row then E.raise { kind = "auth", message = "no stored token for this client" } end
  local kind = row.kind == "pit" and "Private Integration Token" or ("OAuth " .. tostring(row.resource_type) .. " token")
  line("token", kind .. (row.kind == "pit" and (" '" .. tostring(row.name) .. "'") or (" · app " .. tostring(row.app)))
    .. " " .. redact(row.access_token) .. (crow and not s:row_of(c) and " (agency token: mints the location's)" or ""))
  if c.location then line("location", c.location) end
  if c.company or row.company_id then line("company", tostring(c.company or row.company_id)) end
  if row.user_id then line("user", row.user_id) end
  local scopes = {}
  for w in tostring(row.scope or ""):gmatch("%S+") do scopes[#scopes + 1] = w end
  table.sort(scopes)
  line("scopes", #scopes > 0 and (table.concat(scopes, " ") .. " (" .. #scopes .. ")")
    or (row.kind == "pit" and "chosen when the PIT was made (not recorded)" or "none recorded"))
  if row.kind == "pit" then
    line("expires", "not recorded (PITs last until rotated)")
  elseif row.expires_at then
    local left = row.expires_at - sys.time()
    line("expires", utc(row.expires_at) .. (left > 0 and (" (in " .. session.duration(left) .. ")")
      or (" (" .. session.duration(left) .. " ago; refreshed on the next request)")))
  end
  if row.status and row.status ~= "ok" then line("status", row.status .. (row.note and (": " .. row.note) or "")) end
  line("base", c.base)
end

local function scope_set(s)
  local c = s:current()
  local row = c and s:row_of(c)
  if not row or not row.scope then return nil end
  local set = {}
  for w in row.scope:gmatch("%S+") do set[w] = true end
  return set
end


function cmd.scopes(s, args)
  local scopes = require "ghl.scopes"
  if args[1] then
    local word = table.concat(args, " ")
    local g = scopes.group(word)
    local rows = g and {} or scopes.search(word)
    if g then for _, sc in ipairs(g.scopes) do rows[#rows + 1] = scopes.info(sc) or { scope = sc } end end
    if #rows == 0 then say("no scope matches '" .. word .. "'") return end
    for _, r in ipairs(rows) do
      say(string.format("  %-40s %s%s", r.scope, r.tokens or "", r.note and ("  " .. r.note) or ""))
    end
    return
  end
  local granted = scope_set(s)
  local c = s:current()
  if granted then
    local list = {}
    for k in pairs(granted) do list[#list + 1] = k end
    table.sort(list)
    say("granted (" .. #list .. "):")
    for _, sc in ipairs(list) do say("  " .. sc) end
  elseif c then
    say("granted: not known for this token (" .. (static_token(c) and "a static token" or "none recorded") .. ")")
  end
  local used = s:used_scopes(true)
  local names = {}
  for k in pairs(used) do names[#names + 1] = k end
  table.sort(names)
  if #names == 0 then
    say("used: none yet (each request's scopes come from the operations table)")
    return
  end
  say("used by this session's requests:")
  for _, sc in ipairs(names) do
    local mark = granted and (granted[sc] and "✓ " or "✗ ") or "  "
    say(string.format("  %s%-38s %s", mark, sc, table.concat(used[sc], ", ")))
  end
end

local function last_request(s)
  local c = s.last_client
  local l = c and rawget(c, "last")
  if not l then E.raise { kind = "usage", message = "no request has been made in this session yet" } end
  return l, c
end

local function full_url(l)
  local url = l.url
  if l.query and next(l.query) then
    local q = require("ghl.http").encode(l.query)
    if q and q ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. q end
  end
  return url
end

function cmd.explain(s)
  local l, c = last_request(s)
  local function line(k, v) say(string.format("  %-9s %s", k, v)) end
  say(l.method .. " " .. full_url(l))
  line("Version", tostring(l.version))
  local tok
  if static_token(c) then
    tok = "static token " .. redact(static_token(c)) .. (s.sim and static_token(c) == s.sim.token and " (the simulator's)" or "")
  else
    local row = s:row_of(c)
    if row and row.kind == "pit" then tok = "Private Integration Token '" .. tostring(row.name) .. "'"
    else tok = "OAuth " .. tostring(row and row.resource_type or "") .. " token of app " .. tostring(c.app) end
    tok = tok .. " for " .. (c.location and ("location " .. c.location) or ("company " .. tostring(c.company)))
      .. " " .. tostring(l.token_hint)
  end
  line("token", tok)
  local status = l.status and tostring(l.status)
    or ("no response (" .. tostring(l.error and (l.error.kind .. ": " .. tostring(l.error.message)) or "?") .. ")")
  line("status", string.format("%s in %.0f ms%s", status, (l.time or 0) * 1000,
    (l.attempts or 1) > 1 and (", " .. l.attempts .. " attempts") or ""))
  local r = l.rate
  if r then
    local parts = {}
    if r.remaining then
      parts[#parts + 1] = string.format("%s of %s left in the %g s window", r.remaining, r.max, (r.interval_ms or 0) / 1000)
    end
    if r.daily_remaining then parts[#parts + 1] = string.format("%s of %s left today", r.daily_remaining, tostring(r.daily_limit)) end
    if (r.blocked_for or 0) > 0 then parts[#parts + 1] = string.format("paused for %.1f s", r.blocked_for) end
    line("rate", #parts > 0 and table.concat(parts, "; ") or "no rate-limit headers seen")
  end
  if l.op then
    line("operation", l.op.method .. " " .. l.op.path .. (l.op.summary ~= "" and (" (" .. l.op.summary .. ")") or ""))
    line("scopes", #l.op.scopes > 0 and table.concat(l.op.scopes, " ") or "none declared")
  end
end

function cmd.curl(s)
  local l = last_request(s)
  local parts = { "curl -sS" .. (l.method ~= "GET" and (" -X " .. l.method) or "") }
  parts[#parts + 1] = shell_quote(full_url(l), true)
  parts[#parts + 1] = "-H " .. shell_quote("Authorization: Bearer " .. tostring(l.token_hint))
  parts[#parts + 1] = "-H " .. shell_quote("Version: " .. tostring(l.version))
  parts[#parts + 1] = "-H " .. shell_quote("Accept: application/json")
  if l.body ~= nil then
    local body = type(l.body) == "string" and l.body or assert(require("ghl.json").encode(l.body))
    parts[#parts + 1] = "-H " .. shell_quote("Content-Type: application/json")
    parts[#parts + 1] = "--data " .. shell_quote(body)
  end
  say(table.concat(parts, " \\\n  "))
end

function cmd.more()
  inspect.all(rawget(_G, "_"))
end

function cmd.quit(s)
  s.done = true
end

-- Does the statement only look at a value (a name or a dotted path)?
local function view_only(code)
  local t = code:match("^%s*(.-)%s*$")
  return t:match("^[%a_][%w_]*$") ~= nil or (t:match("^[%a_][%w_%.]*[%w_]$") ~= nil and not t:find("..", 1, true))
end

-- recipe(name, statements, opts) -> the text of a recipe file for
-- ghl.recipe: a manifest skeleton (scopes, writes) and the statements as
-- its main function, expressions assigned to `_`, which it returns.
-- statements: {code=, expression=}; opts: scopes (list), writes, date.
function M.recipe(name, statements, opts)
  opts = opts or {}
  local body = {}
  for _, st in ipairs(statements) do
    local code = st.expression and ("_ = " .. st.code) or st.code
    if code:find("%[=*%[") then
      body[#body + 1] = code
    else
      body[#body + 1] = "  " .. code:gsub("\n", "\n  ")
    end
  end
  local scopes = {}
  for _, sc in ipairs(opts.scopes or {}) do scopes[#scopes + 1] = string.format("%q", sc) end
  local lines = {
    "-- " .. name .. ": saved from the ghlua REPL (:save) on " .. (opts.date or os.date("!%Y-%m-%d")) .. ".",
    "-- Describe it, declare its params, then: ghlua run " .. name .. ".lua [--location ID]",
    "recipe{",
    "  name = " .. string.format("%q", name) .. ",",
    "  description = \"TODO: what this recipe does\",",
    "  scopes = { " .. table.concat(scopes, ", ") .. (#scopes > 0 and " " or "") .. "},",
    "  writes = " .. tostring(opts.writes == true) .. ",",
    "  params = {},",
    "}",
    "",
    "return function(params, client)   -- `ghl` is there too (sandboxed unless --trust)",
  }
  lines[#lines + 1] = "  local c = client"
  lines[#lines + 1] = "  local _"
  for _, b in ipairs(body) do lines[#lines + 1] = b end
  lines[#lines + 1] = "  return _"
  lines[#lines + 1] = "end"
  return table.concat(lines, "\n") .. "\n"
end

function cmd.save(s, args, force)
  local file = args[1]
  if not file or args[2] then E.raise { kind = "usage", message = "usage: :save FILE" } end
  if not force and sys.stat(file) then
    E.raise { kind = "usage", message = file .. " exists", hint = "use :save! " .. file .. " to overwrite it" }
  end
  local keep, skipped_secret = {}, 0
  local known = s:secrets()
  local scopes_set, writes = {}, false
  for _, st in ipairs(s.statements) do
    if st.ok and not view_only(st.code) then
      if history.secret(st.code, known) then
        skipped_secret = skipped_secret + 1
      else
        keep[#keep + 1] = st
        for _, r in ipairs(st.requests) do
          if not READS[r.method] then writes = true end
          for _, sc in ipairs(r.op and r.op.scopes or {}) do scopes_set[sc] = true end
        end
      end
    end
  end
  if #keep == 0 then E.raise { kind = "usage", message = "nothing to save: no successful statements yet" } end
  local scopes = {}
  for k in pairs(scopes_set) do scopes[#scopes + 1] = k end
  table.sort(scopes)
  local name = (file:match("([^/]+)$") or file):gsub("%.lua$", ""):gsub("[^%w_%-]", "_")
  local text = M.recipe(name, keep, { scopes = scopes, writes = writes })
  local ok, err = load(text, "=" .. file, "t", {})
  if not ok then E.raise { kind = "bug", message = "the recipe does not compile: " .. tostring(err) } end
  local f, ferr = io.open(file, "wb")
  if not f then E.raise { kind = "io", message = "cannot write " .. file .. ": " .. tostring(ferr) } end
  f:write(text)
  f:close()
  say(string.format("saved %d statement%s to %s (scopes: %s; writes: %s)%s", #keep, #keep == 1 and "" or "s", file,
    #scopes > 0 and table.concat(scopes, " ") or "none", tostring(writes),
    skipped_secret > 0 and string.format("; %d holding secrets left out", skipped_secret) or ""))
  say("run it with: ghlua run " .. shell_quote(file))
end

-- The locations :use lists, as {id=, name=}: those with a stored token,
-- the simulator's when one runs, and, with a stored agency (Company)
-- token, those where the app is installed (read from HighLevel; their
-- tokens are minted on first use). Names come from the simulator, from
-- that read, or from what `ghlua auth locations` last saw. Returns the
-- list (by name, then id) and a line saying what could not be read.
local function use_list(s)
  local by_id, list, why = {}, {}, nil
  local function add(id, name)
    if type(id) ~= "string" then return end
    local e = by_id[id]
    if not e then
      e = { id = id }
      by_id[id] = e
      list[#list + 1] = e
    end
    if type(name) == "string" and name ~= "" then e.name = e.name or name end
  end
  if s.sim then
    for _, l in ipairs(s.sim.ready.locations or {}) do
      if type(l) == "table" then add(l.id, l.name) else add(l) end
    end
    add(s.sim.location)
  end
  local rows = s:rows()
  local locations = require "ghl.locations"
  local names = locations.names(rows)
  local on_sim = s.sim and s.client and static_token(s.client) == s.sim.token
  for _, r in ipairs(rows) do
    if r.resource_type == "Location" then add(r.resource_id, names[r.resource_id]) end
    if r.resource_type == "Company" and r.kind == "oauth" and not on_sim then
      local lok, installed = pcall(locations.installed, { app = r.app, company = r.resource_id, installed = true })
      if lok then
        for _, l in ipairs(installed) do add(l._id or l.id, l.name) end
      else
        why = "the locations installed under company " .. r.resource_id .. " could not be read: "
          .. (E.is(installed) and installed.message or tostring(installed))
      end
    end
  end
  local columns = require "ghl.columns"
  table.sort(list, function(a, b) return columns.name_less(a, b, "id") end)
  return list, why
end

function cmd.use(s, args)
  local id = args[1]
  if not id then
    local cur = s:current()
    local list, why = use_list(s)
    if #list == 0 then
      say(why and E.sanitize(why) or "no locations known: log in with 'ghlua auth login', or type :sim")
      return
    end
    for _, l in ipairs(list) do l.name = l.name or "" end
    local lines = require("ghl.columns").render({ { key = "id" }, { key = "name", max = 40 } }, list)
    for i, l in ipairs(lines) do say(((cur and cur.location == list[i].id) and "* " or "  ") .. l) end
    if why then say(E.sanitize(why)) end
    return
  end
  local c
  if s.sim and (not s:store() or s.client and static_token(s.client) == s.sim.token) then
    c = require("ghl.client").new { token = s.sim.token, base = s.sim.url, location = id }
  else
    c = require("ghl.client").new { location = id }
    local db = s:store()
    if db then db:kv_put("repl", "location", id) end
  end
  s:set_client(c)
  say(s:describe(c))
end

function cmd.sim(s, args)
  if args[1] == "stop" then
    if s:stop_sim() then
      say("simulator stopped")
      if s.client and s.sim_client == s.client then
        rawset(_G, "client", nil); rawset(_G, "c", nil); s.client = nil
        s:setup()
        if s.client then say(s:describe(s.client)) end
      end
    else
      say("no simulator is running")
    end
    return
  end
  if s.sim then
    say("a simulator is already running at " .. s.sim.url .. " (:sim stop ends it)")
    return
  end
  -- its own session, so Ctrl-C at this terminal does not reach it
  local p, err = process.start { exe = s.native.exe, args = #args > 0 and args or M.SIM_ARGS,
    ready_timeout = M.SIM_TIMEOUT, stop_timeout = 3 }
  if not p then
    if err.kind ~= "sim" then error(err, 0) end
    local why = err.output or ""
    local hint = "try it in a shell: " .. process.command_line(err.argv)
    if why == "" and err.message:match("^cannot start") then E.raise { kind = "sim", message = err.message, hint = hint } end
    E.raise { kind = "sim", message = "the simulator did not start" .. (why ~= "" and (": " .. why:gsub("%s+$", "")) or ""),
      hint = hint }
  end
  local info = p.info
  local sim = { process = p, pid = p.pid, log = p.log, url = info.url, token = info.token,
    location = info.locationId, ready = info }
  sim.secrets = { info.token }
  for _, a in ipairs(info.apps or {}) do sim.secrets[#sim.secrets + 1] = a.client_secret end
  for _, pit in ipairs(info.pits or {}) do sim.secrets[#sim.secrets + 1] = pit.token end
  s.sim = sim
  local c = require("ghl.client").new { token = sim.token, base = sim.url, location = sim.location }
  s:set_client(c)
  s.sim_client = c
  say(string.format("simulator running at %s (pid %d, log %s); :sim stop ends it", sim.url, p.pid, p.log))
  say(s:describe(c))
  say("`client` (also `c`) now talks to it: try c:get(\"/contacts/\", {locationId = c.location, limit = 5})")
end

-- run(s, ":name args"): run a command for session s (name may end in "!",
-- and may be any unambiguous prefix).
function M.run(s, line)
  local name, bang, rest = line:match("^%s*:(%a*)(!?)%s*(.-)%s*$")
  local matches = {}
  for _, c in ipairs(M.COMMANDS) do
    if c[1] == name then matches = { c[1] }; break end
    if name ~= "" and c[1]:sub(1, #name) == name then matches[#matches + 1] = c[1] end
  end
  if #matches ~= 1 then
    E.raise { kind = "usage", message = #matches == 0 and ("unknown command :" .. tostring(name))
      or ("ambiguous command :" .. name .. " (" .. table.concat(matches, ", ") .. ")"), hint = ":help lists the commands" }
  end
  local args = {}
  for w in rest:gmatch("%S+") do args[#args + 1] = w end
  return cmd[matches[1]](s, args, bang == "!")
end

return M
