-- `ghlua auth login`: the whole consent flow in one command. Builds the
-- authorization link, opens it with $BROWSER (or xdg-open) and always prints
-- it; when the redirect URI is loopback (http://localhost:PORT/... or
-- http://127.0.0.1:PORT/...) it catches the redirect itself on exactly that
-- port and path, checks `state`, shows a small page in the browser, then
-- exchanges the code and stores the tokens. With another redirect URI, or
-- --no-browser (over SSH), it asks for the redirected URL or the code.
-- Login CSRF: anyone who can reach the port while a login waits can send a
-- callback. One whose state differs is refused; one without state is never
-- taken on its own: the browser is told so, and the user confirms by
-- pasting the address their browser shows (the paste proves the redirect
-- is theirs; a pasted address without state is accepted, as the user's
-- own decision), while a callback with the right state still completes it.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local oauth = require "ghl.oauth"
local common = require "ghl.cli.auth.common"
local E = require "ghl.error"

local M = {}

M.summary = "approve the app in a browser and store its tokens"
M.usage = "ghlua auth login [--app NAME | --client-id ID --redirect-uri URI] [--scopes LIST]"
  .. " [--user-type Location|Company] [--whitelabel] [--no-browser] [--timeout SECONDS] [--force]"
M.help = [[
Opens the authorization link in a browser ($BROWSER, else xdg-open) and
prints it. For a loopback redirect URI registered on the app
(http://localhost:PORT/path or http://127.0.0.1:PORT/path) the redirect is
caught on that port; otherwise, or with --no-browser, paste the address you
were sent to, or just the code. A redirect whose state does not match this
login is refused; one without state is not accepted on its own (anyone who
can reach the port could send it): paste the address your browser shows
when asked. Waits up to 5 minutes; Ctrl-C cancels.
Without --app the client secret comes from GHL_CLIENT_SECRET.
Scopes the app's target user cannot be granted (an agency-only scope on a
sub-account app: HighLevel's consent page refuses the whole request) stop
the login before the browser opens, with the scopes to ask for instead;
--force opens the page anyway.
]]

M.flags = { app = args.APP, ["client-id"] = { "string", value = "ID" }, ["redirect-uri"] = { "string", value = "URI" },
            scopes = { "string", value = "LIST", complete = "scope" }, ["user-type"] = args.USER_TYPE,
            ["no-browser"] = "flag", timeout = { "number", value = "SECONDS" }, whitelabel = "flag", force = "flag" }

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

-- A small page for the browser. ok: true (connected), false (refused) or
-- "confirm" (nothing done yet: the terminal waits for a paste).
local function page(ok, text)
  local class, title = "bad", "ghlua could not connect"
  if ok == true then class, title = "ok", "ghlua is connected" end
  if ok == "confirm" then class, title = "ask", "Confirm in the terminal" end
  return {
    status = ok and 200 or 400,
    headers = { ["Content-Type"] = "text/html; charset=utf-8", ["Cache-Control"] = "no-store" },
    body = ([[<!doctype html><html><head><meta charset="utf-8"><title>ghlua</title>
<style>body{font:16px system-ui,sans-serif;margin:4em auto;max-width:34em;color:#222}
h1{font-size:1.4em}.ok{color:#1a7f37}.bad{color:#c62828}.ask{color:#9a6700}</style></head>
<body><h1 class="%s">%s</h1><p>%s</p></body></html>]]):format(class, title,
      (text:gsub("&", "&amp;"):gsub("<", "&lt;"))),
  }
end

M.CONFIRM_PAGE = "This approval came back without the state that ties it to your login, so ghlua does not"
  .. " accept it on its own: anyone who can reach this port could have sent it. If you just approved the app,"
  .. " copy this page's address from the address bar and paste it into the terminal where"
  .. " 'ghlua auth login' is waiting."

-- The code of a pasted redirected URL (or bare code), checked against the
-- login's state. Returns code, and whether the paste carried a state.
-- Raises: usage (not a URL or code), oauth state_mismatch, oauth (the
-- pasted redirect is a refusal).
local function pasted(line, state)
  local code, got = oauth.parse_callback(line)
  if got and got ~= state then
    E.raise { kind = "oauth", code = "state_mismatch", message = "the pasted address belongs to another login (state mismatch)",
              hint = "use the address from the link printed above" }
  end
  return code, got ~= nil
end

local function open_browser(url)
  local b = os.getenv("BROWSER")
  local q = require("ghl.util").shell_quote(url, true)
  local cmd
  if b and b ~= "" then
    cmd = b:find("%s", 1, true) and b:gsub("%%s", (q:gsub("%%", "%%%%"))) or (b .. " " .. q)
  elseif os.execute("command -v xdg-open >/dev/null 2>&1") then
    cmd = "xdg-open " .. q
  end
  if cmd then os.execute("(" .. cmd .. ") </dev/null >/dev/null 2>&1 &") end
  return cmd ~= nil
end

-- Wait for the redirect on the loopback listener. Returns code. After a
-- callback without state, also reads pasted addresses from stdin.
local function catch(uri, state, timeout, url)
  local host, port, path = loopback(uri)
  local server = require "ghl.server"
  local sys = require "ghl.sys"
  local result, srv, err
  local stateless = 0     -- callbacks refused for carrying no state
  srv, err = server.listen {
    host = host, port = port,
    handler = function(req)
      if req.path ~= path then
        return { status = 404, headers = { ["Content-Type"] = "text/plain" }, body = "not found\n" }
      end
      local q = req.query
      if q.state ~= nil and q.state ~= state then
        io.stderr:write("ghlua: ignored a callback whose state does not match this login\n")
        return page(false, "This approval does not belong to the login that is waiting (state mismatch).")
      end
      if q.state == nil then
        if result then return page(false, "This login is already complete.") end
        stateless = stateless + 1
        if stateless == 1 then srv:stop() end   -- let the loop ask for a paste
        return page("confirm", M.CONFIRM_PAGE)
      end
      if q.error then
        result = { error = q.error, description = q.error_description }
        srv:stop()
        return page(false, "HighLevel answered: " .. q.error .. (q.error_description and (": " .. q.error_description) or "")
                           .. ". You can close this tab.")
      end
      if not q.code or q.code == "" then return page(false, "This address carries no code.") end
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
  local deadline = sys.now() + timeout
  local asking, reading = false, true
  while not result do
    local left = deadline - sys.now()
    if left <= 0 then break end
    local ok, rerr = srv:run(asking and math.min(left, 0.2) or left)
    if not ok then
      srv:close()
      E.raise { kind = "interrupted", message = "login cancelled", cause = rerr }
    end
    if stateless > 0 and not asking and not result then
      asking = true
      io.stdin:setvbuf("no")   -- read no further than a line, so poll sees the rest
      io.stderr:write("ghlua: a callback without state arrived on port ", port, "; it is not accepted on its own,",
        " since anyone who can reach the port could have sent it.\n",
        "If you just approved the app, paste the address your browser shows (still waiting for the approval too):\n> ")
      io.stderr:flush()
    end
    while asking and reading and not result and sys.readable(0) do
      local line = io.read("l")
      if not line then
        reading = false
      elseif line:match("%S") then
        local pok, code, had_state = pcall(pasted, line, state)
        if pok then
          result = { code = code, pasted = true }
          if not had_state then
            io.stderr:write("ghlua: the pasted address carries no state either; taken because you pasted it\n")
          end
        elseif E.is(code) and code.kind == "oauth" and code.code ~= "state_mismatch" then
          srv:close()
          error(code, 0)
        else
          io.stderr:write("ghlua: ", E.sanitize(E.is(code) and code.message or code), "\n> ")
          io.stderr:flush()
        end
      end
    end
  end
  if result and not result.pasted then
    for _ = 1, 3 do srv:step(0.02) end   -- the last page goes out
  end
  srv:close()
  if not result then
    E.raise { kind = "timeout", message = ("no approval arrived within %d seconds"):format(timeout)
                .. (stateless > 0 and ("; %d callback%s without state %s not accepted"):format(stateless,
                  stateless == 1 and "" or "s", stateless == 1 and "was" or "were") or ""),
              hint = stateless > 0 and "run 'ghlua auth login' again and paste the address your browser shows when asked"
                or "run 'ghlua auth login' again; approve the app in the browser that opens" }
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
  return (pasted(line, state))
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
  local o, rest = args.parse(argv, M.flags, M.usage)
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
  local scope_list = require("ghl.scopes").parse(scope_text)
  -- A scope the app's target user cannot be granted: HighLevel's consent
  -- page refuses the request, and no redirect would ever come back.
  -- The fix names what to change: --scopes, or the stored app's default
  -- scopes when they were used.
  local update = not a.from_env and ("'ghlua app update " .. a.name .. " ") or nil
  local problem = require("ghl.scopes").target_problem(scope_list, a.user_type or user_type,
    update and (update .. "--user-type Company'") or "--user-type Company",
    update and not o.scopes and (update .. [[--scopes "%s"']]) or nil)
  if problem and not o.force then
    E.raise { kind = "usage", code = "scope_target", scopes = problem.scopes, message = problem.message,
              hint = problem.fix .. "; or --force to open the consent page anyway" }
  elseif problem then
    io.stderr:write("ghlua: warning: ", E.sanitize(problem.message), "\n")
  end
  local requested = table.concat(scope_list, " ")
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
