-- ghl.sim.trigger: `ghlua webhook trigger TYPE`, run by the simulator
-- app: send one event of a named type, as HighLevel would, to a receiver
-- (`ghlua webhook serve`). The payload is the simulator's
-- (ghl.sim.webhooks.sample: a fresh simulator's seeded data, new ids, a
-- new webhookId and the current timestamp), with --field changes, signed
-- with --key PEM or the user's development key (ghl.webhooks.sim_key, the
-- one serve trusts). It needs no simulator running. The command-line
-- definition (flags, usage, help, the event types) is the command-line
-- app's data (ghl.cli.webhook, ghl.webhooks.events); main.c starts M.run
-- with the flags the dispatcher parsed. Bad input raises a usage error
-- (exit 2); a receiver that cannot be reached raises (exit 1); an answer
-- other than 2xx is a line on stderr and exit 1.
local E = require "ghl.error"
local sys = require "ghl.sys"

local M = {}

local USAGE   -- the command's usage line (the start's usage)

local function usage(msg)
  E.raise { kind = "usage", message = msg .. (USAGE and ("; usage: " .. USAGE) or "") }
end

-- A line on stdout; received bytes in it are shown escaped.
local function out(fmt, ...)
  io.stdout:write(E.sanitize(string.format(fmt, ...), true), "\n")
  io.stdout:flush()
end

-- A line on stderr; outside bytes in it are shown escaped.
local function warn(line)
  io.stderr:write("ghlua webhook: ", E.sanitize(line), "\n")
  io.stderr:flush()
end

-- The client id trigger's app events name: --app, else the one app stored
-- in GHLUA_HOME (the receiver's built-ins match appId against it), else
-- none (the simulator makes one up).
local function trigger_app(o)
  if o.app then return o.app end
  local path = require("ghl.config").store_path()
  if not (path and sys.stat(path)) then return nil end   -- no store: none made for this
  local ok, apps = pcall(function() return require("ghl.auth").store():list_apps() end)
  if ok and type(apps) == "table" and #apps == 1 then return apps[1].client_id end
end

-- A --field value: JSON (true, false, null, a number as JSON writes it,
-- an array, object or quoted string that decodes) or else the text as
-- it is ("02108", "+15551234567" and "[draft] note" stay strings).
local function field_value(v)
  if v == "true" then return true elseif v == "false" then return false end
  if v == "null" then return require("cjson").null end
  local int, frac, exp = v:match("^%-?(%d+)(%.?%d*)(.*)$")
  if int and not (#int > 1 and int:sub(1, 1) == "0") and frac ~= "."
      and (exp == "" or exp:match("^[eE][+-]?%d+$")) then
    return tonumber(v)
  end
  if v:match("^[%[{\"]") then
    local j = require("cjson.safe").decode(v)
    if j ~= nil then return j end
  end
  return v
end

-- --field K=V into event: K a top-level field or a.b.c, V as field_value.
local function set_field(event, spec)
  local k, v = spec:match("^([^=]+)=(.*)$")
  if not k or not k:match("^[%w_%-]+[%w_%-.]*$") or k:find("..", 1, true) or k:sub(-1) == "." then
    usage("--field takes NAME=VALUE (NAME a payload field, a.b for a nested one), got '" .. spec .. "'")
  end
  if k == "type" then usage("--field cannot change the type; name another TYPE instead") end
  local value = field_value(v)
  local t, parts = event, {}
  for p in k:gmatch("[^.]+") do parts[#parts + 1] = p end
  for i = 1, #parts - 1 do
    if type(t[parts[i]]) ~= "table" then t[parts[i]] = {} end
    t = t[parts[i]]
  end
  t[parts[#parts]] = value
end

-- `ghlua webhook trigger`: start.opts the flags (parsed and checked by
-- the dispatcher), start.args the operands (TYPE).
function M.run(start)
  USAGE = start.usage
  local webhooks, simhooks = require "ghl.webhooks", require "ghl.sim.webhooks"
  local o, rest = start.opts, start.args
  if #rest == 0 then usage("webhook trigger needs an event TYPE (see 'ghlua webhook --help')") end
  if #rest > 1 then usage("unexpected argument '" .. rest[2] .. "'") end
  local kind = simhooks.trigger_name(rest[1])
  if not kind then
    -- the type sharing the longest start with what was typed, when that
    -- is most of a name; else the whole list
    local names, best, len = {}, nil, 5
    local typed = rest[1]:lower()
    for _, t in ipairs(simhooks.TRIGGERS) do
      names[#names + 1] = t[1]
      local n, name = 0, t[1]:lower()
      while n < #name and name:byte(n + 1) == typed:byte(n + 1) do n = n + 1 end
      if n > len then best, len = t[1], n end
    end
    usage("unknown event type '" .. rest[1] .. "'; " .. (best and ("did you mean " .. best .. "?")
      or ("one of: " .. table.concat(names, ", "))))
  end
  local url = o.url or ("http://127.0.0.1:%d/"):format(require("ghl.webhooks.events").DEFAULT_PORT)
  if not url:match("^https?://[^/]") then usage("--url must be an http:// or https:// URL") end
  for _, k in ipairs { "location", "company" } do
    if o[k] and not o[k]:match("^[%w_%-]+$") then usage("--" .. k .. " must be letters, digits, '_' or '-'") end
  end
  if o.app and not o.app:match("^[%w_%-]+$") then usage("--app takes a client id (letters, digits, '_' or '-')") end
  if o.agency and not (kind == "INSTALL" or kind == "UNINSTALL" or kind == "PLAN_CHANGE") then
    usage("--agency goes with INSTALL, UNINSTALL or PLAN_CHANGE")
  end
  if o.agency and o.location then usage("--agency sends the agency's event: give no --location") end
  -- the key: --key PEM (text or file), else the development key (made now
  -- if need be), the one serve trusts
  local priv, how
  if o.key then
    priv, how = webhooks.read_private_key(o.key, "--key"), "--key"
  else
    local dev, err = webhooks.sim_key(true)
    if not dev then
      E.raise { kind = err.kind or "io", message = "cannot use the webhook development key: " .. err.message,
        hint = "fix GHLUA_HOME as the message says, or pass --key PEM" }
    end
    priv, how = dev.private, "the development key"
  end
  local event = simhooks.sample(kind, { location = o.location, company = o.company, client_id = trigger_app(o),
    agency = o.agency })
  local reply = require "ghl.sim.reply"
  for _, f in ipairs(o.field or {}) do set_field(event, f) end
  local body = reply.encode(event)
  if o.print then io.stdout:write(body, "\n") end
  local resp, err = require("ghl.http").request { method = "POST", url = url, body = body, timeout = 30,
    headers = { ["Content-Type"] = "application/json", ["X-GHL-Signature"] = assert(webhooks.sign(body, priv)) } }
  local id = type(event.webhookId) == "string" and event.webhookId or "-"
  if not resp then
    E.raise { kind = err.kind or "connect", message = ("cannot send %s %s: %s"):format(kind, id,
      err.message or tostring(err)), hint = "is 'ghlua webhook serve' listening there? (--url URL)" }
  end
  local ok = resp.status >= 200 and resp.status < 300
  local line = ("%s %s to %s (signed with %s): HTTP %d"):format(kind, id, url, how, resp.status)
  if ok then
    out("sent %s", line)
    return 0
  end
  warn("sent " .. line .. (resp.body ~= "" and (" " .. resp.body:sub(1, 300)) or ""))
  return 1
end

return M
