-- `ghlua auth token`: print a valid access token (refreshed when needed)
-- for piping into other tools, e.g. curl -H "Authorization: Bearer $(ghlua auth token)".
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local common = require "ghl.cli.auth.common"

local M = {}

M.summary = "print a fresh access token, for other tools"
M.usage = "ghlua auth token [--location ID | --company ID] [--app NAME]"
M.help = [[
Print a valid access token (refreshed first when needed) and nothing
else, for other tools:
  curl -H "Authorization: Bearer $(ghlua auth token)" ...
]]
M.flags = { location = args.LOCATION, company = args.COMPANY, app = args.APP }

function M.run(argv)
  local o = args.parse(argv, M.flags, M.usage)
  local token = auth.token(common.query(o, M.usage))
  io.stdout:write(token, "\n")
  return 0
end

return M
