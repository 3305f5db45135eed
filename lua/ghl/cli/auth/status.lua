-- `ghlua auth status`: every stored token with its app, type, resource,
-- scopes, expiry and last refresh. Secrets are shown as …abcd.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local common = require "ghl.cli.auth.common"

local M = {}

M.summary = "show stored tokens (secrets redacted)"
M.usage = "ghlua auth status [--json] [--app NAME]"

function M.run(argv)
  local o = args.parse(argv, { json = "flag", app = "string" }, M.usage)
  local rows = auth.store():find_tokens { app = o.app }
  if o.json then
    local out = {}
    for i, r in ipairs(rows) do out[i] = common.public(r) end
    io.stdout:write(#out == 0 and "[]" or require("cjson").encode(out), "\n")
    return 0
  end
  if #rows == 0 then
    io.stdout:write("no tokens stored; run 'ghlua auth login' or 'ghlua auth pit add'\n")
    return 0
  end
  for _, r in ipairs(rows) do
    io.stdout:write(common.line(r), "\n")
    if r.kind ~= "pit" then
      io.stdout:write("  refresh token ", require("ghl.http").redact(r.refresh_token or ""),
        r.refreshed_at and (", last refreshed " .. common.stamp(r.refreshed_at) .. " by process " .. (r.refreshed_by or "?"))
          or (", obtained " .. common.stamp(r.created_at) .. ", not refreshed yet"), "\n")
    end
    if r.company_id and r.resource_type == "Location" then io.stdout:write("  company ", r.company_id, "\n") end
    io.stdout:write("  scopes granted: ", r.scope or "(unknown)", "\n")
    if r.requested_scope and r.requested_scope ~= r.scope then
      io.stdout:write("  scopes requested: ", r.requested_scope, "\n")
    end
    if r.note then io.stdout:write("  note: ", r.note, "\n") end
  end
  return 0
end

return M
