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

function M.run(argv)
  local o = args.parse(argv, { location = "string", company = "string", app = "string" }, M.usage)
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
