-- `ghlua auth locations`: the sub-accounts where the app is installed, read
-- with the agency (Company) token across every page.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local oauth = require "ghl.oauth"
local E = require "ghl.error"

local M = {}

M.summary = "list the locations where the app is installed (agency token)"
M.usage = "ghlua auth locations [--app NAME] [--company ID] [--json]"

-- All installed locations for Company row `crow`.
function M.list(crow)
  if crow.kind == "pit" then
    E.raise { kind = "auth", message = "a Private Integration Token cannot list installed locations",
              hint = "HighLevel accepts only an agency OAuth token on /oauth/installedLocations" }
  end
  local a = auth.app(crow.app)
  local all, skip = {}, 0
  repeat
    local token = auth.token { app = crow.app, company = crow.resource_id }
    local page = oauth.installed_locations { access_token = token, company_id = crow.resource_id,
      app_id = a.client_id:match("^[^-]+"), skip = skip, limit = 100 }
    local locs = page.locations or {}
    for _, l in ipairs(locs) do all[#all + 1] = l end
    skip = skip + #locs
  until #locs == 0 or (page.count and skip >= page.count)
  return all
end

function M.run(argv)
  local o = args.parse(argv, { app = "string", company = "string", json = "flag" }, M.usage)
  local crow
  for _, r in ipairs(auth.store():find_tokens { app = o.app, company = o.company }) do
    if r.resource_type == "Company" then crow = r break end
  end
  if not crow then
    E.raise { kind = "auth", message = "no agency (Company) token stored",
              hint = "log in as the agency: 'ghlua auth login --user-type Company'" }
  end
  local locs = M.list(crow)
  if o.json then
    io.stdout:write(#locs == 0 and "[]" or require("cjson").encode(locs), "\n")
  else
    for _, l in ipairs(locs) do
      io.stdout:write(E.sanitize(("%-22s %s"):format(tostring(l._id or l.id or "?"), tostring(l.name or ""))), "\n")
    end
    io.stderr:write(#locs, " locations\n")
  end
  return 0
end

return M
