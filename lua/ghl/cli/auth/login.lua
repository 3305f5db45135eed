-- `ghlua auth login`: the whole consent flow in one command. Builds the
-- authorization link, opens it with $BROWSER (or xdg-open) and always prints
-- it; when the redirect URI is loopback (http://localhost:PORT/... or
-- http://127.0.0.1:PORT/...) it catches the redirect itself on exactly that
-- port and path, checks `state`, shows a small page in the browser, then
-- exchanges the code and stores the tokens. With another redirect URI, or
-- --no-browser (over SSH), it asks for the redirected URL or the code.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local oauth = require "ghl.oauth"
local common = require "ghl.cli.auth.common"
local E = require "ghl.error"

local M = {}

M.summary = "approve the app in a browser and store its tokens"
M.usage = "ghlua auth login [--app NAME | --client-id ID --redirect-uri URI] [--scopes LIST]"
  .. " [--user-type Location|Company] [--no-browser] [--timeout SECONDS]"
M.help = [[
Opens the authorization link in a browser ($BROWSER, else xdg-open) and
prints it. For a loopback redirect URI registered on the app
(http://localhost:PORT/path or http://127.0.0.1:PORT/path) the redirect is
caught on that port; otherwise, or with --no-browser, paste the address you
were sent to, or just the code. Waits up to 5 minutes; Ctrl-C cancels.
Without --app the client secret comes from GHL_CLIENT_SECRET.
]]

M.SPEC = { app = "string", ["client-id"] = "string", ["redirect-uri"] = "string", scopes = "string",
           ["user-type"] = "string", ["no-browser"] = "flag", timeout = "number", whitelabel = "flag" }

-- host, port, path of a loopback http redirect URI, or nil.
local function loopback(uri)
  local host, port, path = uri:match("^http://([%w.%[%]:]-):(%d+)(/[^?#]*)")
  if not host then
    host, path = uri:match("^http://([%w.%[%]:]-)(/[^?#]*)")
    port = 80
  end
  if not host then host, port, path = uri:match("^http://([%w.%[%]:]-):?(%d*)$"); path = "/" end
  if host ~= "localhost" and host ~= "127.0.0.1" and host ~= "[::1]" then return nil end
  return (host == "[::1]" and "::1" or host), tonumber(port) or 80, path
end

local function page(ok, text)
  return {
    status = ok and 200 or 400,
    headers = { ["Content-Type"] = "text/html; charset=utf-8", ["Cache-Control"] = "no-store" },
    body = ([[<!doctype html><html><head><meta charset="utf-8"><title>ghlua</title>
<style>body{font:16px system-ui,sans-serif;margin:4em auto;max-width:34em;color:#222}
h1{font-size:1.4em}.ok{color:#1a7f37}.bad{color:#c62828}</style></head>
<body><h1 class="%s">%s</h1><p>%s</p></body></html>]]):format(
      ok and "ok" or "bad", ok and "ghlua is connected" or "ghlua could not connect",
      (text:gsub("&", "&amp;"):gsub("<", "&lt;"))),
  }
end

local function open_browser(url)
  local b = os.getenv("BROWSER")
  local q = "'" .. url:gsub("'", "'\\''") .. "'"
  local cmd
  if b and b ~= "" then
    cmd = b:find("%s", 1, true) and b:gsub("%%s", (q:gsub("%%", "%%%%"))) or (b .. " " .. q)
  elseif os.execute("command -v xdg-open >/dev/null 2>&1") then
    cmd = "xdg-open " .. q
  end
  if cmd then os.execute("(" .. cmd .. ") </dev/null >/dev/null 2>&1 &") end
  return cmd ~= nil
end

-- Wait for the redirect on the loopback listener. Returns code.
local function catch(uri, state, timeout, url)
  local host, port, path = loopback(uri)
  local server = require "ghl.server"
  local result, srv, err
  srv, err = server.listen {
    host = host, port = port,
    handler = function(req)
      if req.path ~= path then
        return { status = 404, headers = { ["Content-Type"] = "text/plain" }, body = "not found\n" }
      end
      local q = req.query
      if q.error then
        result = { error = q.error, description = q.error_description }
        srv:stop()
        return page(false, "HighLevel answered: " .. q.error .. (q.error_description and (": " .. q.error_description) or "")
                           .. ". You can close this tab.")
      end
      if not q.code or q.code == "" then return page(false, "This address carries no code.") end
      if q.state ~= state then
        if q.state ~= nil then
          io.stderr:write("ghlua: ignored a callback whose state does not match this login\n")
          return page(false, "This approval does not belong to the login that is waiting (state mismatch).")
        end
        io.stderr:write("ghlua: warning: the callback carried no state; accepted because this login is pending\n")
      end
      result = { code = q.code }
      srv:stop()
      return page(true, "The app is approved. You can close this tab and return to the terminal.")
    end,
  }
  if not srv then
    err.hint = ("the redirect URI's port %d must be free on this machine: stop what uses it, or run with --no-browser"):format(port)
    error(err, 0)
  end
  io.stderr:write("Open this link to approve the app (waiting on ", srv.url, path, "):\n  ", url, "\n")
  open_browser(url)
  local ok, rerr = srv:run(timeout)
  srv:close()
  if not ok then
    E.raise { kind = "interrupted", message = "login cancelled", cause = rerr }
  end
  if not result then
    E.raise { kind = "timeout", message = ("no approval arrived within %d seconds"):format(timeout),
              hint = "run 'ghlua auth login' again; approve the app in the browser that opens" }
  end
  if result.error then
    E.raise { kind = "oauth", code = result.error,
              message = "authorization refused: " .. result.error .. (result.description and (": " .. result.description) or ""),
              hint = "approve the app, or check the link with 'ghlua auth check'" }
  end
  return result.code
end

-- Ask for the redirected URL or the code on stdin.
local function paste(url, state)
  io.stderr:write("Open this link, approve the app, then paste the address you were sent to (or just the code):\n  ",
                  url, "\n> ")
  io.stderr:flush()
  local line = io.read("l")
  if not line then E.raise("usage", "no answer on standard input") end
  local code, got = oauth.parse_callback(line)
  if got and got ~= state then
    E.raise { kind = "oauth", code = "state_mismatch", message = "the pasted address belongs to another login (state mismatch)",
              hint = "use the address from the link printed above" }
  end
  return code
end

-- Exchange a code and store the token. Shared with `auth exchange`.
function M.finish(a, code, o)
  local secret = auth.secret_of(a)
  local tok = oauth.exchange { client_id = a.client_id, client_secret = secret, code = code,
                               redirect_uri = a.redirect_uri, user_type = o.user_type }
  local row = auth.save(a, tok, { requested_scope = o.requested_scope, user_type = o.user_type })
  io.stdout:write("Logged in: ", common.line(row), "\n")
  if row.scope then io.stdout:write("  scopes: ", row.scope, "\n") end
  return row
end

function M.run(argv)
  local o, rest = args.parse(argv, M.SPEC, M.usage)
  if #rest > 0 then args.usage("unexpected argument '" .. rest[1] .. "'", M.usage) end
  local a = common.app(o, M.usage)
  local uri = o["redirect-uri"] or a.redirect_uri
  if not uri then args.usage("no redirect URI: give --redirect-uri or store the app with one", M.usage) end
  a.redirect_uri = uri
  auth.secret_of(a)   -- fail before the browser opens
  local scope_text = o.scopes or a.scopes
  if not scope_text or scope_text == "" then
    args.usage("no scopes: give --scopes (groups like contacts or single scopes) or store them on the app", M.usage)
  end
  local user_type = o["user-type"] or a.user_type or "Location"
  if user_type ~= "Location" and user_type ~= "Company" then args.usage("--user-type must be Location or Company", M.usage) end
  local ok, url, state = pcall(oauth.authorize_url, { client_id = a.client_id, redirect_uri = uri, scopes = scope_text,
                                                      whitelabel = o.whitelabel or a.whitelabel })
  if not ok then
    if E.is(url) then url.kind = "usage"; error(url, 0) end
    error(url, 0)
  end
  local requested = table.concat(require("ghl.scopes").parse(scope_text), " ")
  local code
  if not o["no-browser"] and loopback(uri) then
    code = catch(uri, state, o.timeout or 300, url)
  else
    code = paste(url, state)
  end
  M.finish(a, code, { requested_scope = requested, user_type = user_type })
  return 0
end

return M
