-- ghl.cli.auth.url: `ghlua auth url`, print an authorization link built by
-- ghl.oauth.url.authorize_url. Only the URL goes to stdout (one line, so it
-- pipes); a generated state and any lint warnings about the link go to
-- stderr. Missing or bad flags, including unknown scopes, are usage errors
-- (exit 2) naming the flag.
local args = require "ghl.cli.args"
local E = require "ghl.error"

local M = {}

M.summary = "print the authorization (install) link for an app"

M.usage = "ghlua auth url --client-id ID --redirect-uri URI --scopes LIST [--state S] [--whitelabel]"
  .. " [--login-window self] [--version-id V] [--legacy-path]"

M.help = [[
Print the link that asks a user to install the app and approve its scopes:
https://marketplace.gohighlevel.com/v2/oauth/chooselocation?response_type=code&...

  --client-id ID        the app's client id, with its -suffix (portal: Auth page)
  --redirect-uri URI    a redirect URI registered on the app, exactly as registered
  --scopes LIST         scopes and groups, separated by spaces or commas
                        (repeatable; 'ghlua scopes' lists them), e.g.
                        --scopes "contacts, custom-fields calendars.readonly"
  --state S             the state to send back to the redirect URI (default: 16
                        random bytes as hex, printed on stderr)
  --whitelabel          use the white-label host marketplace.leadconnectorhq.com
                        (needed when the app's listing is white-label)
  --login-window self   show HighLevel's login in the same tab
  --version-id V        install this (draft) app version
  --legacy-path         use the old path /oauth/chooselocation

Environment: GHLUA_MARKETPLACE_BASE (e.g. http://127.0.0.1:8080) replaces
https://marketplace.gohighlevel.com, for tests.
]]

M.flags = {
  ["client-id"] = { "string", value = "ID" }, ["redirect-uri"] = { "string", value = "URI" },
  scopes = { "list", value = "LIST", complete = "scope" }, state = { "string", value = "S" },
  whitelabel = "flag", ["login-window"] = { "string", value = "self", complete = { "self" } },
  ["version-id"] = { "string", value = "V" }, ["legacy-path"] = "flag",
}

local FLAG_OF = { client_id = "--client-id", redirect_uri = "--redirect-uri", scopes = "--scopes",
                  state = "--state", login_window = "--login-window", version_id = "--version-id" }

function M.run(argv)
  local opts, rest = args.parse(argv or {}, M.flags, M.usage)
  if #rest > 0 then args.usage("unexpected argument '" .. rest[1] .. "'", M.usage) end
  for _, f in ipairs { "client-id", "redirect-uri", "scopes" } do
    if not opts[f] then args.usage("missing --" .. f, M.usage) end
  end
  local oauth = require "ghl.oauth.url"
  local ok, url, state = pcall(oauth.authorize_url, {
    client_id = opts["client-id"], redirect_uri = opts["redirect-uri"], scopes = opts.scopes,
    state = opts.state, whitelabel = opts.whitelabel, login_window = opts["login-window"],
    version_id = opts["version-id"], legacy_path = opts["legacy-path"],
  })
  if not ok then
    if not E.is(url) then error(url, 0) end
    local flag = FLAG_OF[url.field]
    if not flag then error(url, 0) end
    args.usage(flag .. ": " .. url.message, M.usage)
  end
  io.stdout:write(url, "\n")
  if not opts.state then io.stderr:write("state: ", state, "\n") end
  -- Lint what was built (e.g. a client id without its -suffix); stderr only.
  local problems = oauth.check_url(url, { app = { whitelabel = opts.whitelabel or false } })
  for _, p in ipairs(problems) do
    if p.code ~= "legacy_path" then
      io.stderr:write(p.level == "note" and "note: " or "warning: ", p.message, " \u{2014} fix: ", p.fix, "\n")
    end
  end
  return 0
end

return M
