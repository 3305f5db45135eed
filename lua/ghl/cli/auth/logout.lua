-- `ghlua auth logout`: forget stored tokens (HighLevel has no revocation
-- endpoint; uninstall the app in HighLevel to revoke it there).
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local common = require "ghl.cli.auth.common"

local M = {}

M.summary = "forget stored tokens"
M.usage = "ghlua auth logout [--location ID | --company ID | --app NAME | --all]"
M.help = [[
Delete the stored tokens of a location, a company, an app, or --all of
them. HighLevel has no revocation endpoint: to revoke access there,
uninstall the app in HighLevel.
]]
M.flags = { location = args.LOCATION, company = args.COMPANY, app = args.APP, all = "flag" }

function M.run(argv)
  local o = args.parse(argv, M.flags, M.usage)
  if not (o.location or o.company or o.app or o.all) then
    args.usage("say which tokens: --location ID, --company ID, --app NAME or --all", M.usage)
  end
  local s = auth.store()
  local rows = s:find_tokens { app = o.app, location = o.location, company = o.company }
  for _, r in ipairs(rows) do
    s:delete_token(r.app, r.resource_id)
    io.stdout:write("forgot ", common.line(r), "\n")
  end
  if #rows == 0 then io.stdout:write("no stored token matched\n") end
  return 0
end

return M
