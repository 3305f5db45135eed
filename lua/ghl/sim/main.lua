-- ghl.sim.main: the simulator app's entry points, started by the
-- program's entry point (main.c) for the command-line nodes that name it
-- (ghl.cli.commands: `ghlua sim`, `ghlua sim env`); each entry takes the
-- start table {opts=, args=, usage=, command=}: the flags the dispatcher
-- parsed and checked, and the usage line for usage errors.
--
-- M.run (`ghlua sim`) turns the flags into the simulator's config (the
-- checks that need the simulator's data are here: scope names, the
-- --auto-approve choice), builds the simulator app (ghl.sim), serves it
-- with ghl.server until SIGTERM or Ctrl-C,
-- and announces itself: "listening", app, company and token lines on stdout
-- and, with --ready-file, a JSON file (mode 0600) written atomically once
-- the port is open: {url, pid, locationId, token, tokenGenerated,
-- companyId, userId, locations, apps = [{client_id, client_secret,
-- secret_generated, redirect_uris, scopes, user_type, whitelabel}], pits,
-- authorizeUrl, tokenUrl, caFile, webhookUrl, webhookPublicKey,
-- webhookPublicKeySpki, webhookPrivateKey (a --webhook-key only) or
-- webhookKeyFile (the development key), webhookRsaPublicKey}. Without
-- --ready-file the same JSON is its record under $GHLUA_HOME/sim while it
-- runs; `ghlua sim env` (M.env) turns either into the shell lines that
-- point ghlua at it, and the simulator's last start-up line says how to
-- run that. Webhooks are sent between server rounds (see
-- ghl.sim.webhooks), signed with --webhook-key or the user's development
-- key (ghl.webhooks.sim_key: made once in GHLUA_HOME, mode 0600, and
-- trusted by `ghlua webhook serve` on this machine while its API is a
-- local simulator). Tokens and client secrets are never printed in full.
-- Bad flags or a malformed --apps file
-- raise a ghl.error of kind "usage" (exit 2); an unreadable tokens or apps
-- file or a port that cannot be bound raise the error as is (exit 1); an
-- interrupt is a clean stop (exit 0). This app requires no other app: its
-- command-line definition (flags, usage, help) is the command-line app's
-- data.
local E = require "ghl.error"

local M = {}

local USAGE   -- the running command's usage line (the start's usage)

local function usage_error(msg)
  E.raise { kind = "usage", message = msg .. (USAGE and ("; usage: " .. USAGE) or "") }
end

-- An integer flag within [min, max], or default when absent.
local function int_flag(opts, name, min, max, default)
  local v = opts[name]
  if v == nil then return default end
  local n = math.tointeger(v)
  if not n or n < min or n > max then
    usage_error(string.format("--%s must be an integer from %d to %d", name, min, max))
  end
  return n
end

-- Only the tail of a secret is ever shown.
function M.redact(token)
  if #token < 12 then return "…" end
  return "…" .. token:sub(-4)
end

-- Read a tokens file: lines "TOKEN [LOCATION_ID]", blank lines and '#'
-- comments ignored. Returns an array of {token=, location=}.
function M.read_tokens(path)
  local f, err = io.open(path, "r")
  if not f then
    error(E.new { kind = "io", where = "sim", message = "cannot read --tokens file: " .. tostring(err) }, 0)
  end
  local list, n = {}, 0
  for line in f:lines() do
    n = n + 1
    line = line:gsub("^%s*#.*$", ""):gsub("%s+#.*$", "")
    local tok, loc, rest = line:match("^%s*(%S*)%s*(%S*)%s*(.-)%s*$")
    if rest ~= "" then
      f:close()
      usage_error(string.format("%s:%d: expected TOKEN [LOCATION_ID]", path, n))
    end
    if tok ~= "" then list[#list + 1] = { token = tok, location = loc ~= "" and loc or nil } end
  end
  f:close()
  return list
end

-- Write data to path atomically (path.tmp, made 0600 before anything is
-- written to it, then renamed). what: the file's name in the error.
local function write_atomic(path, data, what)
  local ok, err = require("ghl.util").write_atomic(path, data)
  if ok then return end
  error(E.new { kind = "io", where = "sim", message = "cannot write " .. (what or "ready file") .. ": " .. err }, 0)
end

-- ---- OAuth apps ----

local USER_TYPES = { location = "Location", ["sub-account"] = "Location", company = "Company",
  agency = "Company" }

local function user_type(v, where)
  local t = type(v) == "string" and USER_TYPES[v:lower()]
  if not t then usage_error(where .. " must be Location or Company") end
  return t
end

local function check_id(v, where)
  if type(v) ~= "string" or not v:match("^[%w_%-]+$") then
    usage_error(where .. " must be letters, digits, '_' or '-'")
  end
  return v
end

local function check_uri(v, where)
  if type(v) ~= "string" or not v:match("^[Hh][Tt][Tt][Pp][Ss]?://[^%s/?#]+[^%s]*$") then
    usage_error(where .. " must be an http:// or https:// URL, got '" .. tostring(v) .. "'")
  end
  return v
end

-- An app's scope set (array or space/comma separated text), checked
-- against the catalogue and the app's target user; nil = the default.
local function app_scopes(v, utype, where)
  if v == nil then return nil end
  local scopes = require "ghl.sim.scopes"
  local list
  if type(v) == "string" then
    list = scopes.split(v, "%s,")
  elseif type(v) == "table" then
    list = {}
    for _, s in ipairs(v) do
      if type(s) ~= "string" then usage_error(where .. " must be a list of scope names") end
      list[#list + 1] = s
    end
  else
    usage_error(where .. " must be a list of scope names")
  end
  if #list == 0 then usage_error(where .. " is empty") end
  for _, s in ipairs(list) do
    if not scopes.known(s) then usage_error(string.format("%s: unknown scope '%s'", where, s)) end
    if not scopes.valid_for(s, utype) then
      usage_error(string.format("%s: scope '%s' is not available to %s apps", where, s, utype))
    end
  end
  return list
end

-- Read --apps FILE: a JSON array of app objects.
function M.read_apps(path)
  local text, err = require("ghl.util").slurp(path)
  if not text then
    error(E.new { kind = "io", where = "sim", message = "cannot read --apps file: " .. tostring(err) }, 0)
  end
  local list = require("cjson.safe").decode(text)
  if type(list) ~= "table" or (next(list) ~= nil and list[1] == nil) then
    usage_error(path .. ": expected a JSON array of apps")
  end
  local apps = {}
  for i, a in ipairs(list) do
    local where = string.format("%s: app %d", path, i)
    if type(a) ~= "table" then usage_error(where .. ": expected an object") end
    local utype = a.user_type and user_type(a.user_type, where .. ": user_type") or "Location"
    local uris = {}
    if a.redirect_uris ~= nil then
      if type(a.redirect_uris) ~= "table" then usage_error(where .. ": redirect_uris must be an array") end
      for _, u in ipairs(a.redirect_uris) do uris[#uris + 1] = check_uri(u, where .. ": redirect_uris") end
    end
    if a.client_secret ~= nil and (type(a.client_secret) ~= "string" or a.client_secret == "") then
      usage_error(where .. ": client_secret must be a non-empty string")
    end
    if a.whitelabel ~= nil and type(a.whitelabel) ~= "boolean" then
      usage_error(where .. ": whitelabel must be true or false")
    end
    apps[i] = { client_id = check_id(a.client_id, where .. ": client_id"), client_secret = a.client_secret,
      redirect_uris = uris, scopes = app_scopes(a.scopes, utype, where .. ": scopes"),
      user_type = utype, whitelabel = a.whitelabel or false,
      name = type(a.name) == "string" and a.name or nil }
  end
  return apps
end

-- The apps from --apps and the --app flags.
local function apps_config(opts)
  local apps = opts.apps and M.read_apps(opts.apps) or {}
  local flagged = opts["app-secret"] or opts["redirect-uri"] or opts["app-scopes"] or opts["app-type"]
    or opts.whitelabel
  if opts.app or (flagged and #apps == 0) then
    local utype = opts["app-type"] and user_type(opts["app-type"], "--app-type") or "Location"
    local uris = {}
    for _, u in ipairs(opts["redirect-uri"] or {}) do uris[#uris + 1] = check_uri(u, "--redirect-uri") end
    if opts["app-secret"] == "" then usage_error("--app-secret must not be empty") end
    apps[#apps + 1] = { client_id = opts.app and check_id(opts.app, "--app"), client_secret = opts["app-secret"],
      redirect_uris = uris, scopes = app_scopes(opts["app-scopes"], utype, "--app-scopes"),
      user_type = utype, whitelabel = opts.whitelabel or false }
  elseif flagged then
    usage_error("--app-secret, --redirect-uri, --app-scopes, --app-type and --whitelabel need --app when --apps is given")
  end
  local seen = {}
  for _, a in ipairs(apps) do
    if a.client_id then
      if seen[a.client_id] then usage_error("app " .. a.client_id .. " is given twice") end
      seen[a.client_id] = true
    end
  end
  return apps
end

-- --pit TOKEN[:ID] -> {token=, resource=}
local function pits_config(list)
  local out = {}
  for _, v in ipairs(list or {}) do
    local tok, id = v:match("^([^:]*):?(.*)$")
    if tok == "" or tok:find("%s") then usage_error("--pit must be TOKEN or TOKEN:LOCATION_ID") end
    out[#out + 1] = { token = tok, resource = id ~= "" and check_id(id, "--pit's location id") or nil }
  end
  return out
end

local function sys_pid()
  return require("ghl.sys").getpid()
end

local hex = require("ghl.util").hex

-- The webhook emitter's config (ghl.sim.webhooks) from the --webhook-*
-- flags; --webhook-key is PEM text or a file holding it. Sending without
-- one signs with the development key (made now if need be); a key that
-- cannot be used is an error naming the fix, not a silent key of the run
-- that every receiver would refuse.
local function webhooks_config(opts)
  local key = opts["webhook-key"] and require("ghl.webhooks").read_private_key(opts["webhook-key"], "--webhook-key")
  local url = opts["webhook-url"]
  if url then check_uri(url, "--webhook-url") end
  local key_file, created
  if url and not key then
    local dev, err = require("ghl.webhooks").sim_key(true)
    if not dev then
      E.raise { kind = err.kind or "io", message = "cannot use the webhook development key: " .. err.message,
        hint = "fix GHLUA_HOME as the message says, or pass --webhook-key PEM" }
    end
    key, key_file, created = dev.private, dev.path, dev.created
  end
  if opts["webhook-retry-delay"] and not url then usage_error("--webhook-retry-delay needs --webhook-url") end
  local delay = opts["webhook-retry-delay"] or 600
  if delay < 0 then usage_error("--webhook-retry-delay must not be negative") end
  return { url = url, key = key, key_file = key_file, key_created = created,
    legacy_rsa = opts["webhook-legacy-rsa"] or false, retry_delay = delay }
end

-- Turn parsed flags into the ghl.sim config (raises usage errors).
function M.config(opts)
  local sys = require "ghl.sys"
  local location = opts.location or require("ghl.sim.state").DEFAULT_LOCATION
  if not location:match("^[%w_%-]+$") then usage_error("--location must be letters, digits, '_' or '-'") end
  local tokens = {}
  for _, t in ipairs(opts.token or {}) do
    if not t:match("^%S+$") then usage_error("--token must not be empty or contain spaces") end
    tokens[#tokens + 1] = { token = t }
  end
  if opts.tokens then
    for _, t in ipairs(M.read_tokens(opts.tokens)) do tokens[#tokens + 1] = t end
  end
  local generated
  if #tokens == 0 then
    generated = "sim_" .. hex(assert(sys.random_bytes(24)))
    tokens[1] = { token = generated }
  end
  local primary
  for _, t in ipairs(tokens) do
    if not t.location or t.location == location then primary = primary or t.token end
  end
  if opts.tls and not (opts.cert and opts.key) then usage_error("--tls needs --cert F and --key F") end
  if (opts.cert or opts.key) and not opts.tls then usage_error("--cert and --key need --tls") end
  local inactive = {}
  for _, id in ipairs(opts["inactive-location"] or {}) do
    inactive[#inactive + 1] = check_id(id, "--inactive-location")
  end
  local phase = opts["token-delay-phase"] or "after"
  if phase ~= "before" and phase ~= "after" then usage_error("--token-delay-phase must be before or after") end
  if opts["token-delay-phase"] and not opts["token-delay-ms"] then
    usage_error("--token-delay-phase needs --token-delay-ms N")
  end
  local auto = opts["auto-approve"]
  if auto ~= nil then
    local ok, why = require("ghl.sim.consent").parse_choice(auto)
    if not ok then usage_error("--auto-approve: " .. why) end
  end
  return {
    host = opts.host or "127.0.0.1",
    port = int_flag(opts, "port", 0, 65535, 0),
    tls = opts.tls and { cert = opts.cert, key = opts.key } or nil,
    location = location,
    seed = int_flag(opts, "seed", math.mininteger, math.maxinteger, 1),
    contacts = int_flag(opts, "contacts", 0, 10000000, 0),
    opportunities = int_flag(opts, "opportunities", 0, 10000000, 0),
    strict_version = opts["strict-version"] or false,
    tokens = tokens,
    primary_token = primary,
    generated_token = generated,
    rate = {
      max = int_flag(opts, "rate-max", 1, math.maxinteger, 100),
      interval_ms = int_flag(opts, "rate-interval-ms", 1, math.maxinteger, 10000),
      daily = int_flag(opts, "rate-daily", 1, math.maxinteger, 200000),
    },
    faults = opts.faults or false,
    quiet = opts.quiet or false,
    ready_file = opts["ready-file"],
    company = opts.company and check_id(opts.company, "--company") or nil,
    locations = int_flag(opts, "locations", 0, 10000, 0),
    inactive = inactive,
    apps = apps_config(opts),
    pits = pits_config(opts.pit),
    webhooks = webhooks_config(opts),
    oauth = {
      token_ttl = int_flag(opts, "token-ttl", 1, 10 * 365 * 86400, 86399),
      code_ttl = int_flag(opts, "code-ttl", 1, 86400, 600),
      auto_approve = auto,
      deny = opts.deny or false,
      delay_ms = int_flag(opts, "token-delay-ms", 0, 3600000, 0),
      delay_phase = phase,
    },
  }
end

-- ---- Pointing a shell at a running simulator: `ghlua sim env` ----

-- Without --ready-file a simulator records itself while it runs: the ready
-- file's contents, as $GHLUA_HOME/sim/PID.json (0600, in a 0700
-- directory), removed when it stops. `ghlua sim env` reads it there and
-- prints the lines that point a shell at it; the file of a simulator that
-- died without removing it is deleted when seen.

M.ENV_VARS = { "GHLUA_API_BASE", "GHLUA_MARKETPLACE_BASE", "GHL_CLIENT_ID", "GHL_CLIENT_SECRET",
  "GHL_REDIRECT_URI", "GHLUA_CA_BUNDLE", "GHL_TOKEN", "GHL_LOCATION_ID" }

-- Where running simulators are recorded: $GHLUA_HOME/sim (the token
-- store's directory). Returns the path, or nil, err.
function M.state_dir()
  local path, err = require("ghl.store").default_path()
  if not path then return nil, err end
  return (path:match("^(.*)/[^/]*$") or ".") .. "/sim"
end

-- mkdir -p dir, each directory made 0700; dir itself is made private.
-- Returns true, or nil, err.
local function make_private_dir(dir)
  local ok, err = require("ghl.util").mkdirs(dir)
  if not ok then return nil, err end
  return require("ghl.sys").chmod(dir, 448)
end

-- The simulators recorded in dir whose process is alive, by pid: an array
-- of {pid=, file=, info= (the ready file's contents)}. The files of dead
-- ones (and their leftover .tmp) are removed.
function M.recorded(dir)
  local sys, cjson = require "ghl.sys", require "cjson.safe"
  local out = {}
  for _, name in ipairs(sys.listdir(dir) or {}) do
    local pid = math.tointeger(tonumber(name:match("^(%d+)%.json$") or name:match("^(%d+)%.json%.tmp$")))
    local file = dir .. "/" .. name
    if pid and not sys.alive(pid) then
      os.remove(file)
    elseif pid and name:match("%.json$") then
      local text = require("ghl.util").slurp(file)
      local info = text and cjson.decode(text)
      if type(info) == "table" and type(info.url) == "string" then
        out[#out + 1] = { pid = pid, file = file, info = info }
      end
    end
  end
  table.sort(out, function(a, b) return a.pid < b.pid end)
  return out
end

local function url_port(url)
  return math.tointeger(tonumber(url:match(":(%d+)/*$")))
end

-- The command that prints a simulator's env lines, for its start-up hint:
-- --ready-file F when it has one, --port N when other simulators run.
function M.env_command(ready_file, port, others)
  if ready_file then return "ghlua sim env --ready-file " .. require("ghl.util").shell_quote(ready_file) end
  if others and others > 0 then return "ghlua sim env --port " .. port end
  return "ghlua sim env"
end

-- The ready information of the simulator opts asks for; raises when there
-- is none (exit 1) or when the choice is ambiguous (usage, exit 2).
local function find_simulator(opts, usage)
  local cjson = require "cjson.safe"
  local file = opts["ready-file"]
  if file then
    local text, err = require("ghl.util").slurp(file)
    local info = text and cjson.decode(text)
    if type(info) ~= "table" or type(info.url) ~= "string" then
      E.raise { kind = "sim", message = text and (file .. " is not a simulator's ready file")
        or ("no simulator: " .. tostring(err)),
        hint = "a simulator writes its --ready-file once it listens and removes it when it stops" }
    end
    return info
  end
  local dir, err = M.state_dir()
  if not dir then E.raise { kind = "sim", message = err.message or tostring(err) } end
  local live, all = {}, M.recorded(dir)
  for _, r in ipairs(all) do
    if not opts.port or url_port(r.info.url) == opts.port then live[#live + 1] = r end
  end
  if #live == 0 then
    local running = {}
    for _, r in ipairs(all) do running[#running + 1] = r.info.url end
    E.raise { kind = "sim",
      message = opts.port and ("no simulator is running on port " .. math.tointeger(opts.port)
        .. (#running > 0 and (" (running: " .. table.concat(running, ", ") .. ")") or ""))
        or ("no simulator is running (none recorded in " .. dir .. ")"),
      hint = "start one with 'ghlua sim' in another shell that has the same GHLUA_HOME;"
        .. " for one started with --ready-file F: 'ghlua sim env --ready-file F'" }
  end
  if #live > 1 then
    local urls = {}
    for _, r in ipairs(live) do urls[#urls + 1] = r.info.url end
    usage(("%d simulators are running (%s); choose one with --port N"):format(#live, table.concat(urls, ", ")))
  end
  return live[1].info
end

-- Lines in the syntax of `shell` that set vars ({name, value} pairs, value
-- nil: unset) and carry comments.
local function shell_lines(shell, comments, vars)
  local shell_quote = require("ghl.util").shell_quote
  local out = {}
  for _, c in ipairs(comments) do out[#out + 1] = "# " .. c end
  local unset = {}
  for _, v in ipairs(vars) do
    local name, value = v[1], v[2]
    if value == nil then
      unset[#unset + 1] = name
    elseif shell == "fish" then
      out[#out + 1] = ("set -gx %s '%s'"):format(name, (value:gsub("[\\']", "\\%0")))
    else
      out[#out + 1] = ("export %s=%s"):format(name, shell_quote(value))
    end
  end
  if #unset > 0 then
    if shell == "fish" then
      for _, name in ipairs(unset) do out[#out + 1] = "set -e " .. name end
    else
      out[#out + 1] = "unset " .. table.concat(unset, " ")
    end
  end
  return table.concat(out, "\n") .. "\n"
end

-- `ghlua sim env`: the flags are checked by the dispatcher (ghl.cli);
-- the rest here.
function M.env(start)
  USAGE = start.usage
  local usage = usage_error
  local opts = start.opts
  local shell = opts.shell or "sh"
  if shell ~= "sh" and shell ~= "fish" then usage("--shell must be sh or fish") end
  if opts.port and opts["ready-file"] then usage("give --port or --ready-file, not both") end
  if opts.port and not (math.tointeger(opts.port) and opts.port > 0 and opts.port < 65536) then
    usage("--port must be a port number from 1 to 65535")
  end
  if opts.unset then
    if opts.port or opts["ready-file"] or opts.token then usage("--unset takes only --shell") end
    local vars = {}
    for _, name in ipairs(M.ENV_VARS) do vars[#vars + 1] = { name } end
    io.stdout:write(shell_lines(shell, {}, vars))
    return 0
  end
  local info = find_simulator(opts, usage)
  local sys = require "ghl.sys"
  local tty = sys.isatty(1)
  local function secret(v) return tty and M.redact(v) or v end
  local comments = { ("ghlua sim at %s (pid %s); undo: eval \"$(ghlua sim env --unset)\""):format(info.url,
    tostring(math.tointeger(info.pid) or info.pid)) }
  local vars = { { "GHLUA_API_BASE", info.url }, { "GHLUA_MARKETPLACE_BASE", info.url } }
  local app = type(info.apps) == "table" and info.apps[1]
  if type(app) == "table" and type(app.client_id) == "string" then
    vars[#vars + 1] = { "GHL_CLIENT_ID", app.client_id }
    if app.secret_generated and type(app.client_secret) == "string" then
      vars[#vars + 1] = { "GHL_CLIENT_SECRET", secret(app.client_secret) }
    else
      comments[#comments + 1] = "GHL_CLIENT_SECRET: the secret you gave the simulator (--app-secret, --apps) is not printed"
    end
    local uri = type(app.redirect_uris) == "table" and app.redirect_uris[1]
    if type(uri) == "string" then vars[#vars + 1] = { "GHL_REDIRECT_URI", uri } end
    if #info.apps > 1 then
      comments[#comments + 1] = ("the first of its %d apps; the others are in 'ghlua sim' output"):format(#info.apps)
    end
  end
  if type(info.caFile) == "string" then vars[#vars + 1] = { "GHLUA_CA_BUNDLE", info.caFile } end
  if opts.token then
    if not (info.tokenGenerated and type(info.token) == "string") then
      E.raise { kind = "sim", message = "this simulator has no generated token: it accepts the tokens it was given"
        .. " (--token, --tokens)", hint = "set GHL_TOKEN to one of them, and GHL_LOCATION_ID" }
    end
    vars[#vars + 1] = { "GHL_TOKEN", secret(info.token) }
    vars[#vars + 1] = { "GHL_LOCATION_ID", info.locationId }
  else
    vars[#vars + 1] = { "GHL_TOKEN" }
    vars[#vars + 1] = { "GHL_LOCATION_ID" }
  end
  if tty then
    comments[#comments + 1] = "secrets are shown as …abcd on a terminal: eval \"$(ghlua sim env)\" sets them in full"
  end
  io.stdout:write(shell_lines(shell, comments, vars))
  return 0
end

-- The ready file's contents.
local function ready_info(app, cfg, url)
  local sys, reply = require "ghl.sys", require "ghl.sim.reply"
  local state = app.state
  local apps, locations, pits = reply.array(), reply.array(), reply.array()
  for _, id in ipairs(state.app_order) do
    local a = state.apps[id]
    apps[#apps + 1] = { client_id = a.client_id, client_secret = a.client_secret,
      redirect_uris = reply.array(a.redirect_uris), scopes = reply.array(a.scopes),
      user_type = a.user_type, whitelabel = a.whitelabel, app_id = a.app_id,
      secret_generated = not cfg.given_secrets[a.client_id] }
  end
  for _, loc in ipairs(state:company_locations()) do
    locations[#locations + 1] = { id = loc.id, name = loc.name, active = loc.active }
  end
  for _, p in ipairs(cfg.pits) do
    local rec = state.tokens[p.token]
    pits[#pits + 1] = { token = p.token, locationId = rec.location, companyId = rec.kind == "company"
      and rec.company or nil }
  end
  return {
    url = url, pid = sys.getpid(), locationId = cfg.location, token = cfg.primary_token or reply.null,
    tokenGenerated = cfg.generated_token ~= nil, caFile = cfg.tls and sys.realpath(cfg.tls.cert) or nil,
    companyId = state.company.id, userId = state.user_id, locations = locations, apps = apps,
    pits = pits, authorizeUrl = url .. "/v2/oauth/chooselocation", tokenUrl = url .. "/oauth/token",
    webhookUrl = app.webhooks and app.webhooks.url or nil,
    webhookPublicKey = app.webhooks and app.webhooks.public_key or nil,
    webhookPublicKeySpki = app.webhooks and app.webhooks.public_spki or nil,
    webhookPrivateKey = app.webhooks and not app.webhooks.key_file and app.webhooks.private_key or nil,
    webhookKeyFile = app.webhooks and app.webhooks.key_file or nil,
    webhookRsaPublicKey = app.webhooks and app.webhooks.rsa_public or nil,
  }
end

function M.run(start)
  USAGE = start.usage
  local cfg = M.config(start.opts)

  local sim, server = require "ghl.sim", require "ghl.server"
  local reply = require "ghl.sim.reply"
  if not cfg.quiet then
    cfg.log = function(line) io.stderr:write(E.sanitize(line, true), "\n") end
  end
  cfg.webhooks.log = cfg.log
  -- which apps' secrets the user gave (sim.new fills in the others)
  cfg.given_secrets = {}
  local given = {}
  for i, a in ipairs(cfg.apps) do given[i] = a.client_secret ~= nil end
  local app = sim.new(cfg)
  for i, id in ipairs(app.state.app_order) do cfg.given_secrets[id] = given[i] or false end
  local auto = cfg.oauth.auto_approve
  if auto then
    local consent = require "ghl.sim.consent"
    local choice = consent.parse_choice(auto)
    local unknown = consent.unknown_locations(app.state, choice)
    if choice.location and not app.state:location(choice.location) then unknown = { choice.location } end
    if #unknown > 0 then
      usage_error("--auto-approve: no location " .. table.concat(unknown, ", ") .. " in company "
        .. app.state.company.id .. " (see --locations, --location)")
    end
  end
  local srv, err = server.listen { host = cfg.host, port = cfg.port, tls = cfg.tls, handler = app:handler() }
  if not srv then error(err, 0) end
  app:set_base_url(srv.url or string.format("%s://%s:%d", cfg.tls and "https" or "http", cfg.host, srv.port))
  local url = app.base_url

  io.stdout:write(string.format("ghlua sim: listening on %s (location %s)\n", url, cfg.location))
  if cfg.generated_token then
    io.stdout:write(string.format("ghlua sim: generated token %s (%s)\n", M.redact(cfg.generated_token),
      cfg.ready_file and "full value in the ready file" or "'ghlua sim env --token' exports it"))
  else
    io.stdout:write(string.format("ghlua sim: accepting %d token%s\n", #cfg.tokens, #cfg.tokens == 1 and "" or "s"))
  end
  if #cfg.pits > 0 then
    io.stdout:write(string.format("ghlua sim: accepting %d private integration token%s\n", #cfg.pits,
      #cfg.pits == 1 and "" or "s"))
  end
  local state = app.state
  local locs, inactive = state:company_locations(), 0
  for _, loc in ipairs(locs) do if not loc.active then inactive = inactive + 1 end end
  io.stdout:write(string.format("ghlua sim: company %s with %d location%s%s\n", state.company.id, #locs,
    #locs == 1 and "" or "s", inactive > 0 and string.format(" (%d inactive)", inactive) or ""))
  for _, id in ipairs(state.app_order) do
    local a = state.apps[id]
    io.stdout:write(string.format("ghlua sim: app %s (%s, secret %s, %d scope%s, redirect %s%s)\n",
      a.client_id, a.user_type, M.redact(a.client_secret), #a.scopes, #a.scopes == 1 and "" or "s",
      a.redirect_uris[1], #a.redirect_uris > 1 and string.format(" +%d more", #a.redirect_uris - 1) or ""))
  end
  if cfg.oauth.auto_approve or cfg.oauth.deny then
    io.stdout:write(string.format("ghlua sim: consent %s\n", cfg.oauth.deny and "denies every approval"
      or ("auto-approves (" .. cfg.oauth.auto_approve .. ")")))
  end
  io.stdout:write(string.format("ghlua sim: authorize at %s/v2/oauth/chooselocation, tokens at %s/oauth/token\n",
    url, url))
  local wh = app.webhooks
  if wh.url or cfg.webhooks.key then
    io.stdout:write(string.format("ghlua sim: webhook public key %s (Ed25519%s%s)\n", wh.public_spki,
      wh.key_file and ("; the development key " .. wh.key_file .. (cfg.webhooks.key_created and ", made now" or ""))
        or "", wh.rsa_public and "; legacy RSA key in the ready file" or ""))
  end
  io.stdout:write(wh.url and string.format("ghlua sim: sending webhooks to %s%s\n", wh.url, wh.key_file
      and " ('ghlua webhook serve' here trusts the key while its GHLUA_API_BASE is a local simulator)" or "")
    or "ghlua sim: not sending webhooks (no --webhook-url)\n")
  io.stdout:flush()

  -- The ready file, or the record `ghlua sim env` finds; then the line
  -- that tells how to point another shell here (once it works).
  local record
  if cfg.ready_file then
    local ok, werr = pcall(write_atomic, cfg.ready_file, reply.encode(ready_info(app, cfg, url)))
    if not ok then srv:close() error(werr, 0) end
  else
    local dir, derr = M.state_dir()
    local ok, others = dir ~= nil, 0
    if ok then ok, derr = make_private_dir(dir) end
    if ok then
      others = #M.recorded(dir)
      record = dir .. "/" .. sys_pid() .. ".json"
      ok, derr = pcall(write_atomic, record, reply.encode(ready_info(app, cfg, url)), "the simulator's record")
      if not ok then record = nil end
    end
    if not ok then
      io.stderr:write("ghlua sim: warning: 'ghlua sim env' will not find this simulator: ",
        E.sanitize(tostring(type(derr) == "table" and derr.message or derr), true),
        " (start it with --ready-file F, then use 'ghlua sim env --ready-file F')\n")
    else
      cfg.env_hint = M.env_command(nil, srv.port, others)
    end
  end
  if cfg.ready_file then cfg.env_hint = M.env_command(cfg.ready_file) end
  if cfg.env_hint then
    io.stdout:write(string.format("ghlua sim: in another shell: eval \"$(%s)\"\n", cfg.env_hint))
    io.stdout:flush()
  end

  local ok, rerr
  if wh.url then
    -- serve in rounds and send the queued webhooks between them: a slow or
    -- dead receiver never holds up an API request
    repeat
      ok, rerr = srv:step(wh:wait_time())
      wh:pump()
    until not ok
  else
    ok, rerr = srv:run()
  end
  srv:close()
  if cfg.ready_file then os.remove(cfg.ready_file) end
  if record then os.remove(record) end
  if not ok and rerr ~= nil and not (type(rerr) == "table" and rerr.kind == "interrupted") then
    error(rerr, 0)
  end
  if not cfg.quiet then io.stderr:write("ghlua sim: stopped\n") end
  return 0
end

return M
