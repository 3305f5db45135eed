-- check: the authorization-link linter (lua/ghl/oauth/url.lua check_url,
-- lua/ghl/cli/auth/check.lua: `ghlua auth check URL`). Input: the pasted
-- link; or "build" on the first line, then client id, redirect URI, scope
-- list, state and version id on the next lines, for a link made by
-- authorize_url. Checked: check_url raises nothing but a ghl.error
-- (not_a_url); every problem has a level, a code, a message and a fix;
-- the command exits 0, 1 or 2 with one line per problem; a link that
-- authorize_url made has no error or warning for the app it was made for
-- (but a client id without its -suffix, which `auth url` warns about).
local url = require "ghl.oauth.url"
local cmd = require "ghl.cli.auth.check"
local check = require "check"

local APP = { client_id = "68a2fd84fab6670f45220ebf-megyp358", redirect_uri = "http://127.0.0.1:8080/callback",
              user_type = "Location", whitelabel = false }
local LEVELS = { error = true, warning = true, note = true }

-- io.stdout for the command: collects what it writes.
local out = {}
local sink = setmetatable({}, { __index = { write = function(self, ...)
  out[#out + 1] = table.concat({ ... })   -- one write, one piece
  return self
end } })

local function lint(link, app)
  local ok, problems = check.pcall(url.check_url, link, { app = app })
  if not ok then
    check.expected(problems)
    check.equal(problems.code, "not_a_url", "error code")
    return nil
  end
  for _, p in ipairs(problems) do
    check.truth(LEVELS[p.level], "problem level " .. tostring(p.level))
    for _, k in ipairs { "code", "message", "fix" } do
      check.truth(type(p[k]) == "string" and p[k] ~= "", "problem without a " .. k)
    end
  end
  return problems
end

local function build(data)
  local o = {}
  local lines = {}
  for l in (data .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  o.client_id, o.redirect_uri, o.scopes = lines[2], lines[3], lines[4] or ""
  o.state = lines[5] ~= "" and lines[5] or false
  o.version_id = lines[6] ~= "" and lines[6] or nil
  local ok, link = check.pcall(url.authorize_url, o)
  if not ok then check.expected(link); return end
  local app = { client_id = o.client_id, redirect_uri = o.redirect_uri, whitelabel = false }
  for _, p in ipairs(lint(link, app) or { { level = "error", code = "not_a_url" } }) do
    -- a client id without its -suffix: `auth url` builds the link and warns
    local suffixless = p.code == "client_id_suffix" and not o.client_id:find("-", 2, true)
    check.truth(p.level == "note" or suffixless, ("authorize_url's link has a problem: %s %s (%s)"):format(p.code,
      tostring(p.message), link))
  end
end

return function(data)
  if data:match("^build\n") then return build(data) end
  lint(data)
  lint(data, APP)
  if data == "-" then return end   -- the command would read standard input
  out = {}
  local saved = io.stdout
  io.stdout = sink
  local ok, code = check.pcall(cmd.run, { data })
  io.stdout = saved
  if not ok then
    check.expected(code)
    check.equal(code.kind, "usage", "error kind")
    return
  end
  check.truth(code == 0 or code == 1, "exit status " .. tostring(code))
  for _, s in ipairs(out) do check.truth(s:sub(-1) == "\n", "output without a line end") end
end
