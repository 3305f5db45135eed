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

function M.run(argv)
  local o, rest = args.parse(argv, { app = "string", ["client-id"] = "string", ["redirect-uri"] = "string",
                                     ["user-type"] = "string" }, M.usage)
  if #rest ~= 1 then args.usage("give exactly one code or redirected URL", M.usage) end
  local a = common.app(o, M.usage)
  local code = oauth.parse_callback(rest[1])
  login.finish(a, code, { user_type = o["user-type"] })
  return 0
end

return M
