-- `ghlua auth reconnect`: recover lost or spent tokens without the user,
-- through HighLevel's Reconnect API (a fresh authorization code for an
-- existing install, exchanged at once). Runs under the refresh claim, so it
-- never races a refresh in another process, and never presents a refresh
-- token (ghl.auth.reconnect).
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local common = require "ghl.cli.auth.common"

local M = {}

M.summary = "recover tokens through the Reconnect API (no browser)"
M.usage = "ghlua auth reconnect --location ID | --company ID [--app NAME]"
M.help = [[
Get new tokens for an existing install through HighLevel's Reconnect API,
without a browser: for a token lost or whose refresh token was spent
('ghlua auth doctor' says when). It never presents a refresh token.
]]
M.flags = { location = args.LOCATION, company = args.COMPANY, app = args.APP }

function M.run(argv)
  local o = args.parse(argv, M.flags, M.usage)
  if not (o.location or o.company) or (o.location and o.company) then
    args.usage("give --location ID or --company ID", M.usage)
  end
  local row = auth.find(common.query(o, M.usage))
  local a = auth.app(o.app or (row and row.app))
  local new = auth.reconnect(a, { location = o.location, company = o.company })
  io.stdout:write("reconnected: ", common.line(new), "\n")
  return 0
end

return M
