-- `ghlua auth reconnect`: recover lost or spent tokens without the user,
-- through HighLevel's Reconnect API (a fresh authorization code for an
-- existing install, exchanged at once). Runs under the refresh claim, so it
-- never races a refresh in another process.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local oauth = require "ghl.oauth"
local common = require "ghl.cli.auth.common"
local E = require "ghl.error"

local M = {}

M.summary = "recover tokens through the Reconnect API (no browser)"
M.usage = "ghlua auth reconnect --location ID | --company ID [--app NAME]"

function M.run(argv)
  local o = args.parse(argv, { location = "string", company = "string", app = "string" }, M.usage)
  if not (o.location or o.company) or (o.location and o.company) then
    args.usage("give --location ID or --company ID", M.usage)
  end
  local row = auth.find(common.query(o, M.usage))
  local a = auth.app(o.app or (row and row.app))
  local rid = o.location or o.company
  local s = auth.store()
  if row then
    local got, holder = s:claim(a.name, rid, auth.LEASE)
    if got == false then
      E.raise { kind = "auth", message = ("process %d is refreshing this token right now"):format(holder.pid or 0),
                hint = "wait a moment and check 'ghlua auth status'" }
    elseif got == nil then error(holder, 0) end
  end
  local ok, tok = pcall(function()
    local secret = auth.secret_of(a)
    local rc = oauth.reconnect { client_id = a.client_id, client_secret = secret,
                                 location_id = o.location, company_id = o.company }
    return oauth.exchange { client_id = a.client_id, client_secret = secret, code = rc.authorizationCode,
                            user_type = o.location and "Location" or "Company" }
  end)
  if not ok then
    if row then s:release(a.name, rid) end
    error(tok, 0)
  end
  local new
  if row then
    auth.commit(a.name, rid, { access_token = tok.access_token, refresh_token = tok.refresh_token,
      expires_at = require("ghl.sys").time() + (tonumber(tok.expires_in) or 86399), scope = tok.scope,
      status = "ok", note = "recovered through the Reconnect API at " .. os.date("!%Y-%m-%dT%H:%M:%SZ") })
    new = s:get_token(a.name, rid)
  else
    new = auth.save(a, tok, { user_type = o.location and "Location" or "Company", location_id = o.location,
                              company_id = o.company })
  end
  io.stdout:write("reconnected: ", common.line(new), "\n")
  return 0
end

return M
