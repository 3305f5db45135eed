-- `ghlua auth refresh`: refresh stored tokens now (they also refresh by
-- themselves before expiry), under the store's per-resource claim.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local common = require "ghl.cli.auth.common"
local E = require "ghl.error"

local M = {}

M.summary = "refresh tokens now (--location ID, --company ID or --all)"
M.usage = "ghlua auth refresh [--location ID | --company ID | --all] [--app NAME]"
M.help = [[
Refresh the access token of a location or company now, or of --all stored
tokens (they also refresh by themselves before they expire). A refresh
runs under the store's claim, so it never races one in another process.
]]
M.flags = { location = args.LOCATION, company = args.COMPANY, all = "flag", app = args.APP }

function M.run(argv)
  local o = args.parse(argv, M.flags, M.usage)
  local rows
  if o.all then
    rows = auth.store():find_tokens { app = o.app, kind = "oauth" }
  else
    local row = auth.find(common.query(o, M.usage))
    if not row then E.raise { kind = "auth", message = "no stored token matches", hint = "see 'ghlua auth status'" } end
    rows = { row }
  end
  local failed = 0
  for _, row in ipairs(rows) do
    if row.kind == "pit" then
      io.stdout:write("skipped ", common.line(row), " (PITs never refresh)\n")
    else
      local ok, r = pcall(auth.refresh, row, { force = true })
      if ok then
        io.stdout:write("refreshed ", common.line(r), "\n")
      else
        failed = failed + 1
        io.stderr:write("ghlua: ", E.sanitize(row.resource_type .. " " .. row.resource_id .. ": " .. tostring(r)), "\n")
      end
    end
  end
  return failed > 0 and 1 or 0
end

return M
