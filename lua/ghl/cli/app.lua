-- `ghlua app add|list|remove`: the OAuth apps (client id, secret, redirect
-- URI, default scopes) kept in the token store. The secret comes from
-- GHL_CLIENT_SECRET or a no-echo prompt, never from the command line.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local http = require "ghl.http"
local sys = require "ghl.sys"
local E = require "ghl.error"

local M = {}

M.summary = "store OAuth apps: add, list, remove"
M.usage = "ghlua app add NAME --client-id ID --redirect-uri URI [--scopes LIST] [--whitelabel]"
  .. " [--user-type Location|Company] | ghlua app list [--json] | ghlua app remove NAME"
M.help = [[
  add NAME     store an app; the client secret is read from GHL_CLIENT_SECRET,
               or asked for on the terminal without echo
  list         the stored apps (secrets shown as …abcd)
  remove NAME  forget an app and every token issued to it
]]

local ADD = { ["client-id"] = "string", ["redirect-uri"] = "string", scopes = "string",
              whitelabel = "flag", ["user-type"] = "string" }

local function add(argv)
  local o, rest = args.parse(argv, ADD, M.usage)
  local name = rest[1]
  if not name or #rest > 1 then args.usage("app add needs exactly one NAME", M.usage) end
  if not name:match("^[%w._-]+$") then args.usage("app name '" .. name .. "' may use letters, digits, '.', '_' and '-' only", M.usage) end
  if not o["client-id"] then args.usage("missing --client-id", M.usage) end
  if not o["redirect-uri"] then args.usage("missing --redirect-uri", M.usage) end
  if not o["redirect-uri"]:match("^https?://[^/]+") then
    args.usage("--redirect-uri must be an absolute http(s) URL, exactly as registered on the app", M.usage)
  end
  if not o["client-id"]:find("-", 1, true) then
    io.stderr:write("ghlua: warning: client id '", o["client-id"], "' has no -suffix; copy the whole id from the app's settings\n")
  end
  local ut = o["user-type"] or "Location"
  if ut ~= "Location" and ut ~= "Company" then args.usage("--user-type must be Location or Company", M.usage) end
  local scopes
  if o.scopes then
    local list, err = require("ghl.scopes").parse(o.scopes)
    if not list then err.kind = "usage"; error(err, 0) end
    scopes = table.concat(list, " ")
  end
  local secret = os.getenv("GHL_CLIENT_SECRET")
  if not secret or secret == "" then
    local s, err = sys.readpass("Client secret for " .. name .. ": ")
    if not s then
      E.raise { kind = "usage", message = "no client secret: set GHL_CLIENT_SECRET or run in a terminal to be asked" }
    end
    secret = s
  end
  if secret == "" then E.raise("usage", "the client secret is empty") end
  assert(auth.store():put_app { name = name, client_id = o["client-id"], client_secret = secret,
    redirect_uri = o["redirect-uri"], scopes = scopes, whitelabel = o.whitelabel or false, user_type = ut })
  io.stdout:write(("stored app %s (client %s, secret %s)\n"):format(name, o["client-id"], http.redact(secret)))
  return 0
end

local function list(argv)
  local o = args.parse(argv, { json = "flag" }, M.usage)
  local apps = auth.store():list_apps()
  if o.json then
    local out = {}
    for i, a in ipairs(apps) do
      out[i] = { name = a.name, client_id = a.client_id, client_secret = http.redact(a.client_secret or ""),
                 redirect_uri = a.redirect_uri, scopes = a.scopes, whitelabel = a.whitelabel, user_type = a.user_type }
    end
    io.stdout:write(require("cjson").encode(out), "\n")
    return 0
  end
  if #apps == 0 then io.stdout:write("no apps stored; add one with 'ghlua app add'\n") return 0 end
  for _, a in ipairs(apps) do
    io.stdout:write(("%-16s %-34s %-8s %s  secret %s%s\n"):format(a.name, a.client_id, a.user_type or "Location",
      a.redirect_uri or "-", http.redact(a.client_secret or ""), a.whitelabel and "  whitelabel" or ""))
  end
  return 0
end

local function remove(argv)
  local _, rest = args.parse(argv, {}, M.usage)
  if #rest ~= 1 then args.usage("app remove needs exactly one NAME", M.usage) end
  if not auth.store():remove_app(rest[1]) then
    E.raise { kind = "usage", message = "no app named '" .. rest[1] .. "'", hint = "see 'ghlua app list'" }
  end
  io.stdout:write("removed app ", rest[1], " and its tokens\n")
  return 0
end

function M.run(argv)
  local sub = table.remove(argv, 1)
  if sub == "add" then return add(argv) end
  if sub == "list" then return list(argv) end
  if sub == "remove" or sub == "rm" then return remove(argv) end
  args.usage(sub and ("unknown app subcommand '" .. sub .. "'") or "missing app subcommand", M.usage)
end

return M
