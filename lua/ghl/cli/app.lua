-- `ghlua app add|update|list|remove`: the OAuth apps (client id, secret,
-- redirect URI, target user, default scopes) kept in the token store. The
-- secret comes from GHL_CLIENT_SECRET, a no-echo prompt on a terminal, or
-- the first line of standard input, never from the command line. Scopes
-- that the app's target user cannot be granted (an agency-only scope on a
-- sub-account app) are named in a warning: HighLevel's consent page would
-- refuse every login that asks for them.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local util = require "ghl.util"
local sys = require "ghl.sys"
local E = require "ghl.error"

local M = {}

M.summary = "store OAuth apps: add, update, list, remove"

local USER_TYPE = [[
--user-type is the app's target user in the marketplace portal: Location
(sub-account, the default) or Company (agency). A sub-account app cannot be
granted agency-only scopes; add and update warn about them.
]]

local SCOPES = { "string", value = "LIST", complete = "scope" }
local ID, URI = { "string", value = "ID" }, { "string", value = "URI" }

M.subcommands = {
  { name = "add", summary = "store an app: client id, secret, redirect URI, scopes",
    usage = "ghlua app add NAME --client-id ID --redirect-uri URI [--scopes LIST] [--whitelabel]"
      .. " [--user-type Location|Company]",
    help = [[
Store an app under NAME. The client secret is read from GHL_CLIENT_SECRET,
or asked for on the terminal without echo, or read from the first line of
standard input: never from the command line. --scopes (groups like
contacts or single scopes; 'ghlua scopes' lists them) are the default for
'ghlua auth login'; --whitelabel: the app's listing is white-label.

]] .. USER_TYPE,
    flags = { ["client-id"] = ID, ["redirect-uri"] = URI, scopes = SCOPES, whitelabel = "flag",
              ["user-type"] = args.USER_TYPE },
    arguments = { { "NAME" } } },
  { name = "update", summary = "change a stored app's scopes, redirect URI, client id, target user or secret",
    usage = "ghlua app update NAME [--scopes LIST] [--redirect-uri URI] [--client-id ID]"
      .. " [--user-type Location|Company] [--whitelabel | --no-whitelabel] [--secret]",
    help = [[
Change what is given and keep the rest: --scopes (the default for 'ghlua
auth login'), --redirect-uri, --client-id (to fix it; another app's id is
refused while this app has tokens), --user-type (the app's target user in
the portal), --whitelabel or --no-whitelabel; --secret reads a new client
secret as add does.

]] .. USER_TYPE,
    flags = { ["client-id"] = ID, ["redirect-uri"] = URI, scopes = SCOPES, whitelabel = "flag",
              ["no-whitelabel"] = "flag", ["user-type"] = args.USER_TYPE, secret = "flag" },
    arguments = { { "NAME", complete = "app" } } },
  { name = "list", summary = "the stored apps (secrets shown as …abcd)",
    usage = "ghlua app list [--json]", flags = { json = "flag" } },
  { name = "remove", aliases = { "rm" }, summary = "forget an app and every token issued to it",
    usage = "ghlua app remove NAME", flags = {}, arguments = { { "NAME", complete = "app" } } },
}
local SUB = {}
for _, node in ipairs(M.subcommands) do SUB[node.name] = node end
local ADD, UPDATE = SUB.add.flags, SUB.update.flags

-- The usage line of the subcommand running.
local current = SUB.add.usage

local function check_name(name, what)
  if not name then args.usage(what .. " needs exactly one NAME", current) end
  if not name:match("^[%w._-]+$") then args.usage("app name '" .. name .. "' may use letters, digits, '.', '_' and '-' only", current) end
end

local function check_redirect(uri)
  if not uri:match("^https?://[^/]+") then
    args.usage("--redirect-uri must be an absolute http(s) URL, exactly as registered on the app", current)
  end
end

local function check_client_id(id)
  if not id:find("-", 1, true) then
    io.stderr:write("ghlua: warning: client id '", E.sanitize(id), "' has no -suffix; copy the whole id from the app's settings\n")
  end
end

local function check_user_type(ut)
  if ut ~= "Location" and ut ~= "Company" then args.usage("--user-type must be Location or Company", current) end
  return ut
end

-- The --scopes list, parsed (groups expanded), as stored: space-separated.
local function parse_scopes(text)
  local list, err = require("ghl.scopes").parse(text)
  if not list then err.kind = "usage"; error(err, 0) end
  return table.concat(list, " ")
end

-- Warn when scopes (space-separated) do not fit target user ut.
local function warn_target(scopes, ut)
  if not scopes then return end
  local list = {}
  for s in scopes:gmatch("%S+") do list[#list + 1] = s end
  local p = require("ghl.scopes").target_problem(list, ut, "--user-type Company")
  if p then io.stderr:write("ghlua: warning: ", E.sanitize(p.message), " \u{2014} fix: ", E.sanitize(p.fix), "\n") end
end

-- The client secret: GHL_CLIENT_SECRET, else asked on the terminal, else
-- the first line of standard input.
local function read_secret(name)
  local secret = os.getenv("GHL_CLIENT_SECRET")
  if not secret or secret == "" then
    if sys.isatty(0) then
      secret = sys.readpass("Client secret for " .. name .. ": ")
    else
      secret = io.read("l")
    end
    if not secret then
      E.raise { kind = "usage",
                message = "no client secret: set GHL_CLIENT_SECRET, pipe it on standard input, or run in a terminal to be asked" }
    end
    secret = secret:match("^%s*(.-)%s*$")
  end
  if secret == "" then
    E.raise { kind = "usage", message = "the client secret is empty",
              hint = "set GHL_CLIENT_SECRET or pipe the secret on standard input" }
  end
  return secret
end

local function add(argv)
  local o, rest = args.parse(argv, ADD, current)
  if #rest > 1 then args.usage("app add needs exactly one NAME", current) end
  local name = rest[1]
  check_name(name, "app add")
  if not o["client-id"] then args.usage("missing --client-id", current) end
  if not o["redirect-uri"] then args.usage("missing --redirect-uri", current) end
  check_redirect(o["redirect-uri"])
  check_client_id(o["client-id"])
  local ut = check_user_type(o["user-type"] or "Location")
  local scopes = o.scopes and parse_scopes(o.scopes)
  warn_target(scopes, ut)
  local secret = read_secret(name)
  assert(auth.store():put_app { name = name, client_id = o["client-id"], client_secret = secret,
    redirect_uri = o["redirect-uri"], scopes = scopes, whitelabel = o.whitelabel or false, user_type = ut })
  io.stdout:write(("stored app %s (client %s, secret %s)\n"):format(name, o["client-id"], util.redact(secret)))
  return 0
end

-- The app part of a client id: "68a2fd84fab6670f45220ebf" of "68a2…-megyp358".
local function app_part(id)
  return id:match("^[^-]*")
end

local function update(argv)
  local o, rest = args.parse(argv, UPDATE, current)
  if #rest > 1 then args.usage("app update needs exactly one NAME", current) end
  local name = rest[1]
  check_name(name, "app update")
  if o.whitelabel and o["no-whitelabel"] then args.usage("give --whitelabel or --no-whitelabel, not both", current) end
  local s = auth.store()
  local a = s:get_app(name)
  if not a then
    E.raise { kind = "usage", message = "no app named '" .. name .. "'",
              hint = "see 'ghlua app list', or store it with 'ghlua app add " .. name .. " --client-id ID --redirect-uri URI'" }
  end
  local changed = {}
  if o.scopes then
    a.scopes = parse_scopes(o.scopes)
    changed[#changed + 1] = "scopes " .. a.scopes
  end
  if o["redirect-uri"] then
    check_redirect(o["redirect-uri"])
    a.redirect_uri = o["redirect-uri"]
    changed[#changed + 1] = "redirect URI " .. a.redirect_uri
  end
  if o["client-id"] then
    local id = o["client-id"]
    check_client_id(id)
    if app_part(id) ~= app_part(a.client_id) and #s:find_tokens { app = name } > 0 then
      E.raise { kind = "usage", message = string.format("client id %s belongs to another app than %s, which issued the"
          .. " tokens stored for '%s'; they would stop refreshing", id, a.client_id, name),
        hint = string.format("store the other app under a new name: 'ghlua app add NAME --client-id %s ...'", id) }
    end
    a.client_id = id
    changed[#changed + 1] = "client " .. id
  end
  if o["user-type"] then
    a.user_type = check_user_type(o["user-type"])
    changed[#changed + 1] = "target user " .. a.user_type
  end
  if o.whitelabel or o["no-whitelabel"] then
    a.whitelabel = o.whitelabel and true or false
    changed[#changed + 1] = a.whitelabel and "white-label" or "not white-label"
  end
  if o.secret then
    a.client_secret = read_secret(name)
    changed[#changed + 1] = "secret " .. util.redact(a.client_secret)
  end
  if #changed == 0 then
    args.usage("nothing to update: give --scopes, --redirect-uri, --client-id, --user-type, --whitelabel,"
      .. " --no-whitelabel or --secret", current)
  end
  if o.scopes or o["user-type"] then warn_target(a.scopes, a.user_type or "Location") end
  assert(s:put_app { name = name, client_id = a.client_id, client_secret = a.client_secret,
    redirect_uri = a.redirect_uri, scopes = a.scopes, whitelabel = a.whitelabel and true or false,
    user_type = a.user_type })
  io.stdout:write(E.sanitize(("updated app %s: %s"):format(name, table.concat(changed, "; "))), "\n")
  return 0
end

local function list(argv)
  local o = args.parse(argv, SUB.list.flags, current)
  local apps = auth.store():list_apps()
  if o.json then
    local out = {}
    for i, a in ipairs(apps) do
      out[i] = { name = a.name, client_id = a.client_id, client_secret = util.redact(a.client_secret or ""),
                 redirect_uri = a.redirect_uri, scopes = a.scopes, whitelabel = a.whitelabel, user_type = a.user_type }
    end
    io.stdout:write(assert(require("ghl.json").encode(out)), "\n")
    return 0
  end
  if #apps == 0 then io.stdout:write("no apps stored; add one with 'ghlua app add'\n") return 0 end
  for _, a in ipairs(apps) do
    io.stdout:write(("%-16s %-34s %-8s %s  secret %s%s\n"):format(a.name, a.client_id, a.user_type or "Location",
      a.redirect_uri or "-", util.redact(a.client_secret or ""), a.whitelabel and "  whitelabel" or ""))
  end
  return 0
end

local function remove(argv)
  local _, rest = args.parse(argv, SUB.remove.flags, current)
  if #rest ~= 1 then args.usage("app remove needs exactly one NAME", current) end
  if not auth.store():remove_app(rest[1]) then
    E.raise { kind = "usage", message = "no app named '" .. rest[1] .. "'", hint = "see 'ghlua app list'" }
  end
  io.stdout:write("removed app ", rest[1], " and its tokens\n")
  return 0
end

function M.run(argv)
  local sub = table.remove(argv, 1)
  current = SUB[sub] and SUB[sub].usage or require("ghl.cli.commands").usage_of(M, { "app" })
  if sub == "add" then return add(argv) end
  if sub == "update" then return update(argv) end
  if sub == "list" then return list(argv) end
  if sub == "remove" or sub == "rm" then return remove(argv) end
  args.usage(sub and ("unknown app subcommand '" .. sub .. "'") or "missing app subcommand", current)
end

return M
