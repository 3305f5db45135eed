-- ghl.cli.auth.check: `ghlua auth check URL`, lint an authorization link
-- with ghl.oauth.url.check_url, optionally against the app's settings.
-- Prints one line per problem, "problem: MESSAGE — fix: FIX [code]"
-- ("[code, warning]" for warnings; notes print as "note: ..."), then exits
-- 1 when there is an error or warning, else prints "ok: ..." and exits 0.
-- No URL, text that is not a URL, or a bad flag: exit 2.
local args = require "ghl.cli.args"
local E = require "ghl.error"

local M = {}

M.summary = "check an authorization link for the mistakes HighLevel rejects"

M.usage = "ghlua auth check URL|- [--app NAME] [--app-client-id ID] [--app-redirect-uri URI]"
  .. " [--app-user-type Location|Company] [--app-whitelabel]"

M.help = [[
Check an authorization (install) link, e.g. one pasted from the portal or a
script, and say what to change: host and path, missing, repeated or
double-encoded parameters, a client id without its -suffix, unknown scopes,
spaces and commas in the scope list, a relative redirect URI, agency-only
scopes on a sub-account app, the white-label host. '-' reads the URL from
standard input. Spaces may be encoded as %20 or +.

Describe the app to check against it (the values in the portal):
  --app NAME               an app stored with 'ghlua app add' (flags below
                           override its values)
  --app-client-id ID       the app's client id
  --app-redirect-uri URI   the redirect URI the link must carry
  --app-user-type T        Location (sub-account) or Company (agency)
  --app-whitelabel         the app's listing is white-label

Without --app-user-type, agency-only scopes mixed with sub-account-only ones
are a warning. With any --app-* flag, an app without --app-whitelabel is
taken as not white-label.

Exit status: 0 clean (notes allowed), 1 problems, 2 usage error.
]]

M.flags = {
  ["app-client-id"] = { "string", value = "ID" }, ["app-redirect-uri"] = { "string", value = "URI" },
  ["app-user-type"] = args.USER_TYPE, ["app-whitelabel"] = "flag", app = args.APP,
}
M.arguments = { { "URL|-" } }

local USER_TYPES = { location = "Location", company = "Company", ["sub-account"] = "Location", agency = "Company" }

-- The app to check against, from the --app-* flags laid over `stored` (a
-- stored app's {client_id=, redirect_uri=, user_type=, whitelabel=}), or
-- nil when nothing describes one.
function M.app(opts, stored)
  local app = {}
  for k, v in pairs(stored or {}) do app[k] = v end
  app.client_id = opts["app-client-id"] or app.client_id
  app.redirect_uri = opts["app-redirect-uri"] or app.redirect_uri
  if opts["app-user-type"] then
    app.user_type = USER_TYPES[opts["app-user-type"]:lower()]
    if not app.user_type then args.usage("--app-user-type must be Location or Company", M.usage) end
  end
  if opts["app-whitelabel"] then app.whitelabel = true end
  if next(app) == nil then return nil end
  if app.whitelabel == nil then app.whitelabel = false end
  return app
end

local function line(p)
  local tag = p.level == "warning" and (p.code .. ", warning") or p.code
  return E.sanitize(string.format("%s: %s \u{2014} fix: %s [%s]", p.level == "note" and "note" or "problem",
    p.message, p.fix, tag)) .. "\n"
end

function M.run(argv)
  local opts, rest = args.parse(argv or {}, M.flags, M.usage)
  if #rest == 0 then args.usage("missing URL", M.usage) end
  if #rest > 1 then args.usage("give one URL (quote it: it contains '&')", M.usage) end
  local url = rest[1]
  if url == "-" then url = io.stdin:read("a") end
  local app = M.app(opts, opts.app and require("ghl.auth").app(opts.app))

  local check = require("ghl.oauth.url").check_url
  local ok, problems, link = pcall(check, url, { app = app })
  if not ok then
    if E.is(problems) and problems.code == "not_a_url" then args.usage(problems.message, M.usage) end
    error(problems, 0)
  end
  local failed = false
  for _, p in ipairs(problems) do
    io.stdout:write(line(p))
    failed = failed or p.level ~= "note"
  end
  if failed then return 1 end
  local types = require("ghl.scopes").token_types(link.scopes)
  local token = #types.Company > 0 and "an agency (Company) app"
    or #types.Location > 0 and "a sub-account (Location) or agency app" or "either app type"
  io.stdout:write(E.sanitize(string.format("ok: %s%s, client %s, %d scope%s for %s", link.authority, link.path,
    link.params.client_id.value, #link.scopes, #link.scopes == 1 and "" or "s", token)), "\n")
  return 0
end

return M
