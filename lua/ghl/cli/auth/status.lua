-- `ghlua auth status`: every stored token with its app, type, resource,
-- scopes, expiry and last refresh. Secrets are shown as …abcd.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local common = require "ghl.cli.auth.common"
local E = require "ghl.error"

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
  -- rows hold what HighLevel answered (ids, scopes, error messages in
  -- notes): printed with control bytes escaped
  local function put(...) io.stdout:write(E.sanitize(table.concat({ ... })), "\n") end
  for _, r in ipairs(rows) do
    put(common.line(r))
    if r.kind ~= "pit" then
      put("  refresh token ", require("ghl.http").redact(r.refresh_token or ""),
        r.refreshed_at and (", last refreshed " .. common.stamp(r.refreshed_at) .. " by process " .. (r.refreshed_by or "?"))
          or (", obtained " .. common.stamp(r.created_at) .. ", not refreshed yet"))
    end
    if r.company_id and r.resource_type == "Location" then put("  company ", r.company_id) end
    put("  scopes granted: ", r.scope or "(unknown)")
    if r.requested_scope and r.requested_scope ~= r.scope then put("  scopes requested: ", r.requested_scope) end
    if r.note then put("  note: ", r.note) end
  end
  return 0
end

return M
