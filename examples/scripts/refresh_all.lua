-- refresh_all.lua: refresh every OAuth token in the token store now (for
-- example before a long batch, or to find the sub-accounts whose refresh
-- token was revoked) and report each one. Private Integration Tokens never
-- expire and are listed as skipped. A script, not a recipe: it works on
-- the token store itself, which a recipe never sees, so it runs as your
-- own code with the whole library. Refreshes are safe to run beside other
-- ghlua processes (the store's per-token claim; a token refreshed
-- meanwhile by another process is kept).
--
--   ghlua examples/scripts/refresh_all.lua [--app NAME]
--
-- Exit status 1 when a token could not be refreshed; `ghlua auth doctor`
-- explains why and what to do.
local ghl = require "ghl"
local auth = require "ghl.auth"

local USAGE = "usage: ghlua examples/scripts/refresh_all.lua [--app NAME]\n"
local app
local i = 1
while arg[i] do
  if arg[i] == "--app" and arg[i + 1] then app, i = arg[i + 1], i + 1
  elseif arg[i] == "--help" or arg[i] == "-h" then io.stdout:write(USAGE); os.exit(0)
  else io.stderr:write("refresh_all.lua: unexpected argument '", arg[i], "'\n", USAGE); os.exit(2) end
  i = i + 1
end

local rows = auth.store():find_tokens { app = app }
table.sort(rows, function(a, b) return a.app .. a.resource_id < b.app .. b.resource_id end)
local ok_n, failed = 0, 0
for _, row in ipairs(rows) do
  local what
  if row.kind == "pit" then
    what = "skipped (Private Integration Token)"
  else
    local new, err = ghl.try(auth.refresh, row, { force = true })
    if new then
      ok_n = ok_n + 1
      what = ("refreshed, expires in %dm"):format(math.floor((new.expires_at - os.time()) / 60))
    else
      failed = failed + 1
      what = "FAILED: " .. tostring(err)
    end
  end
  print(("%-12s %-8s %-22s %s"):format(row.app, row.resource_type, row.resource_id, what))
end
print(("%d tokens: %d refreshed, %d failed"):format(#rows, ok_n, failed))
if failed > 0 then os.exit(1) end
