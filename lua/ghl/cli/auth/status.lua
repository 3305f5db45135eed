-- `ghlua auth status`: every stored token, one line each (a header, then
-- type, resource, name, app, state, expiry and how many scopes), so an
-- agency's 300 location tokens take 300 lines; --long gives each token's
-- detail (refresh token, company, scopes, notes), --json the rows.
-- Secrets are shown as …abcd, and only with --long and --json.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local common = require "ghl.cli.auth.common"
local E = require "ghl.error"
local sys = require "ghl.sys"
local columns = require "ghl.columns"

local M = {}

M.summary = "show stored tokens, one line each (secrets redacted)"
M.usage = "ghlua auth status [--long | --json] [--app NAME]"
M.help = [[
One line per stored token, under a header:
  TYPE      Location or Company (PIT: a Private Integration Token)
  RESOURCE  the location or company id
  NAME      the location's name, as 'ghlua auth locations' last read it
  APP       the app it was issued to (pit:NAME for a PIT)
  STATE     ok; expired (refreshed on next use); uncertain or spent (the
            refresh token may be spent: 'ghlua auth doctor'); inactive;
            uninstalled
  EXPIRES   when the access token expires (PITs never do)
  SCOPES    how many scopes were granted (? when unknown)
Sorted by app, then companies before locations, then name.
  --long    every token's detail: refresh token (redacted), last refresh,
            company, the scopes granted and requested, notes
  --json    the rows as JSON, secrets redacted
]]
M.flags = { json = "flag", app = args.APP, long = "flag" }

-- The STATE column: the stored status, or "expired" for a usable token
-- whose access token has run out (the next use refreshes it).
local function state(r)
  if r.unreadable then return "unreadable" end
  local st = r.status or "ok"
  if st == "ok" and r.kind ~= "pit" and r.expires_at and r.expires_at <= sys.time() then return "expired" end
  return st
end

local function count_scopes(scope)
  if not scope then return "?" end
  local n = 0
  for _ in scope:gmatch("%S+") do n = n + 1 end
  return n
end

-- The one-line-per-token table: header first.
function M.table(rows)
  local names = require("ghl.locations").names(rows)
  local list = {}
  for i, r in ipairs(rows) do
    list[i] = {
      type = r.resource_type .. (r.kind == "pit" and " PIT" or ""), resource = r.resource_id,
      name = names[r.resource_id], app = r.app,
      state = state(r), expires = r.kind == "pit" and "never" or common.until_(r.expires_at),
      scopes = count_scopes(r.scope), company = r.resource_type == "Company",
    }
  end
  table.sort(list, function(a, b)
    if a.app ~= b.app then return a.app < b.app end
    if a.company ~= b.company then return a.company end
    return columns.name_less(a, b, "resource")
  end)
  return columns.render({
    { key = "type", title = "TYPE" }, { key = "resource", title = "RESOURCE", max = 40 },
    { key = "name", title = "NAME", max = 24 }, { key = "app", title = "APP", max = 20 },
    { key = "state", title = "STATE" }, { key = "expires", title = "EXPIRES" },
    { key = "scopes", title = "SCOPES", right = true },
  }, list, { header = true })
end

function M.run(argv)
  local o = args.parse(argv, M.flags, M.usage)
  if o.json and o.long then args.usage("give --long or --json, not both", M.usage) end
  local rows = auth.store():find_tokens { app = o.app }
  if o.json then
    local out = {}
    for i, r in ipairs(rows) do out[i] = common.public(r) end
    io.stdout:write(#out == 0 and "[]" or assert(require("ghl.json").encode(out)), "\n")
    return 0
  end
  if #rows == 0 then
    io.stdout:write("no tokens stored; run 'ghlua auth login' or 'ghlua auth pit add'\n")
    return 0
  end
  if not o.long then
    io.stdout:write(table.concat(M.table(rows), "\n"), "\n")
    -- what the lines leave out, on stderr so stdout stays one line a token
    local notes = 0
    for _, r in ipairs(rows) do
      if r.note then notes = notes + 1 end
      if r.unreadable then io.stderr:write("ghlua: ", E.sanitize(r.unreadable), "\n  hint: ", r.unreadable_hint or "", "\n") end
    end
    if notes > 0 then
      io.stderr:write(("%d token%s %s a note: 'ghlua auth status --long' shows it, 'ghlua auth doctor' explains it\n")
        :format(notes, notes == 1 and "" or "s", notes == 1 and "has" or "have"))
    end
    return 0
  end
  -- rows hold what HighLevel answered (ids, scopes, error messages in
  -- notes): printed with control bytes escaped
  local function put(...) io.stdout:write(E.sanitize(table.concat({ ... })), "\n") end
  for _, r in ipairs(rows) do
    put(common.line(r))
    if r.kind ~= "pit" then
      put("  refresh token ", require("ghl.util").redact(r.refresh_token or ""),
        r.refreshed_at and (", last refreshed " .. common.stamp(r.refreshed_at) .. " by process " .. (r.refreshed_by or "?"))
          or (", obtained " .. common.stamp(r.created_at) .. ", not refreshed yet"))
    end
    if r.company_id and r.resource_type == "Location" then put("  company ", r.company_id) end
    put("  scopes granted: ", r.scope or "(unknown)")
    if r.requested_scope and r.requested_scope ~= r.scope then put("  scopes requested: ", r.requested_scope) end
    if r.note then put("  note: ", r.note) end
    if r.unreadable then put("  unreadable: ", r.unreadable, "; ", r.unreadable_hint or "") end
  end
  return 0
end

return M
