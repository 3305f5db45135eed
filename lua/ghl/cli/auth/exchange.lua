-- `ghlua auth exchange CODE_OR_URL`: the manual third leg of the flow, for a
-- code copied off a redirect page.
local args = require "ghl.cli.args"
local oauth = require "ghl.oauth"
local common = require "ghl.cli.auth.common"
local login = require "ghl.cli.auth.login"

local M = {}

M.summary = "exchange a code (or the redirected URL) for tokens and store them"
M.usage = "ghlua auth exchange CODE_OR_REDIRECTED_URL [--app NAME | --client-id ID --redirect-uri URI]"
  .. " [--user-type Location|Company]"
M.help = [[
The manual last step of the flow: give the code from the page HighLevel
redirected to, or that page's whole address, and the tokens are fetched
and stored. The app is --app NAME (a stored one), or --client-id and
--redirect-uri with the secret in GHL_CLIENT_SECRET; --user-type says
which kind of token to ask for (default: the app's target user).
]]
M.flags = { app = args.APP, ["client-id"] = { "string", value = "ID" }, ["redirect-uri"] = { "string", value = "URI" },
            ["user-type"] = args.USER_TYPE }
M.arguments = { { "CODE_OR_REDIRECTED_URL" } }

function M.run(argv)
  local o, rest = args.parse(argv, M.flags, M.usage)
  if #rest ~= 1 then args.usage("give exactly one code or redirected URL", M.usage) end
  local a = common.app(o, M.usage)
  local code = oauth.parse_callback(rest[1])
  login.finish(a, code, { user_type = o["user-type"] })
  return 0
end

return M
