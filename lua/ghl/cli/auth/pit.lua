-- `ghlua auth pit add|remove`: Private Integration Tokens. The token is
-- read from GHL_PIT or standard input (or a no-echo prompt), never from the
-- command line; it is used as a bearer token and never refreshed. `pit add`
-- tries the token with one cheap call before storing it
-- (ghl.cli.auth.online) and stores nothing when the API refuses it, when it
-- is another location's or of the other type, or when the API cannot be
-- reached; --offline stores it without the call.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local util = require "ghl.util"
local sys = require "ghl.sys"
local E = require "ghl.error"

local M = {}

M.summary = "store a Private Integration Token (pit add NAME --location ID)"
M.subcommands = {
  { name = "add", summary = "store a PIT under NAME, for a location or a company",
    usage = "ghlua auth pit add NAME --location ID | --company ID [--offline]  (token on stdin or in GHL_PIT)",
    help = [[
The token is read from GHL_PIT, else asked for on the terminal without
echo, else read from the first line of standard input: never from the
command line. It is used as a bearer token for that location (--location)
or company (--company) and never refreshed; 'ghlua auth status' lists it
as pit:NAME.

Before storing it, ghlua tries it with one cheap call (a GET of the
location, or of the company's locations) and stores nothing when the API
refuses it (invalid, revoked), when it belongs to another location or is
of the other type, or when the API cannot be reached (GHLUA_API_BASE).
A call refused only for its scope still proves the token valid.
--offline stores it without trying it.
]],
    flags = { location = args.LOCATION, company = args.COMPANY, offline = "flag" }, arguments = { { "NAME" } } },
  { name = "remove", summary = "forget the PIT stored under NAME",
    usage = "ghlua auth pit remove NAME", flags = {}, arguments = { { "NAME", complete = "pit" } } },
}
local ADD, REMOVE = M.subcommands[1], M.subcommands[2]


local function read_token()
  local t = os.getenv("GHL_PIT")
  if t and t ~= "" then return t end
  if sys.isatty(0) then
    local s, err = sys.readpass("Private Integration Token: ")
    if not s then error(err, 0) end
    return s
  end
  return io.read("l")
end

function M.run(argv)
  local sub = table.remove(argv, 1)
  local node = sub == "add" and ADD or REMOVE
  local o, rest = args.parse(argv, node.flags, node.usage)
  local name = rest[1]
  if (sub ~= "add" and sub ~= "remove") or not name or #rest > 1 then
    args.usage("expected 'pit " .. node.name .. " NAME'", node.usage)
  end
  local s = auth.store()
  if sub == "remove" then
    local n = 0
    for _, r in ipairs(s:find_tokens { app = "pit:" .. name }) do s:delete_token(r.app, r.resource_id); n = n + 1 end
    if n == 0 then E.raise { kind = "usage", message = "no PIT named '" .. name .. "'" } end
    io.stdout:write("removed PIT ", name, "\n")
    return 0
  end
  if not (o.location or o.company) or (o.location and o.company) then
    args.usage("give --location ID or --company ID", ADD.usage)
  end
  local token = (read_token() or ""):match("^%s*(.-)%s*$")
  if token == "" then E.raise("usage", "no token: pipe it on standard input or set GHL_PIT") end
  if token:find("%s") then E.raise("usage", "the token contains spaces; paste only the token") end
  if not token:match("^pit%-") then
    io.stderr:write("ghlua: warning: Private Integration Tokens usually start with 'pit-'\n")
  end
  s:find_tokens {}   -- a store that cannot be read says so before the API is asked
  local checked = ""
  if not o.offline then
    local r = require("ghl.cli.auth.online").check { token = token, type = o.location and "Location" or "Company",
                                                     id = o.location or o.company, pit = true }
    if not r.ok then
      E.raise { kind = r.state == "unreachable" and "network" or "auth", code = r.state,
                message = ("PIT %s (%s) not stored: %s"):format(name, util.redact(token), r.says),
                hint = r.fix .. (r.state == "unreachable" and "; or store it without checking with --offline" or "") }
    end
    checked = "; checked online: " .. r.says
  end
  assert(s:put_token { app = "pit:" .. name, name = name, kind = "pit",
    resource_type = o.location and "Location" or "Company", resource_id = o.location or o.company,
    location_id = o.location, company_id = o.company, access_token = token, status = "ok" })
  io.stdout:write(E.sanitize(("stored PIT %s for %s %s (%s)%s"):format(name, o.location and "location" or "company",
    o.location or o.company, util.redact(token), checked)), "\n")
  return 0
end

return M
