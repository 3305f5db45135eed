-- support.tmux: drive an interactive program through a real pseudo-terminal
-- with tmux, on a private server (its own socket and an empty config), so a
-- spec can type, press Tab or Ctrl-C and read the screen:
--   local t = tmux.start({ GHLUA }, { env = {K = V}, unset = {"NO_COLOR"}, cwd = DIR })
--   t.line("1 + 1")                 -- type the text, then Enter
--   t.type("ghl.con")               -- type literally, no Enter
--   t.keys("Tab", "Tab")            -- tmux key names: Enter Tab C-c C-d Up BSpace
--   local m = t.mark()              -- where new output will start
--   t.wait("^2$", m)                -- poll the screen from line m until a line
--                                   -- matches (a Lua pattern; {plain=true}
--                                   -- for plain text); returns the text since m
--   t.screen(m, {escapes = true})   -- the text since m (colours kept)
--   t.exit_code()                   -- waits for the program's end: its status
--   t.stop()
-- Waits poll `tmux capture-pane` every 20 ms up to TIMEOUT seconds, never
-- sleep a fixed time, and raise with the whole screen when nothing matches.
-- The program runs as `sh -c 'trap : INT; PROGRAM; echo "[exit $?]"; exec
-- sleep 3600'`: its exit status shows and the pane stays readable after it
-- ends. The shell catches SIGINT (so Ctrl-C does not end the pane, and the
-- program starts with the default disposition, as from a login shell).
local sys = require "ghl.sys"
local run = require "support.run"

local M = {}

M.TIMEOUT = 15

local q = run.quote

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local text = p:read("a")
  local ok, _, code = p:close()
  return text, ok and 0 or code
end

-- Sessions not stopped yet; whatever a failed test left is killed when the
-- test process closes its Lua state, so no tmux server outlives the run.
local live = {}
M._reaper = setmetatable({}, { __gc = function()
  for t in pairs(live) do t.stop() end
end })

function M.available()
  return os.execute("command -v tmux >/dev/null 2>&1") == true
end

-- start(argv, {env=, unset=, cwd=, width=, height=}) -> t
function M.start(argv, opts)
  opts = opts or {}
  if not M.available() then error("support.tmux: tmux is not installed (sh .ci/deps test installs it)", 2) end
  local dir = os.tmpname()
  os.remove(dir)
  assert(sys.mkdir(dir, tonumber("700", 8)))
  local sock, conf = dir .. "/sock", dir .. "/tmux.conf"
  local f = assert(io.open(conf, "w"))
  f:write("set -g history-limit 100000\nset -g status off\n")
  f:close()
  local parts = { "env" }
  for _, k in ipairs(opts.unset or {}) do parts[#parts + 1] = "-u " .. q(k) end
  local keys = {}
  for k in pairs(opts.env or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = q(k .. "=" .. opts.env[k]) end
  for _, a in ipairs(argv) do parts[#parts + 1] = q(a) end
  local script = "trap : INT; " .. table.concat(parts, " ") .. '; echo "[exit $?]"; exec sleep 3600'
  local cmd = string.format("tmux -S %s -f %s new-session -d -s t -x %d -y %d -c %s %s", q(sock), q(conf),
    opts.width or 160, opts.height or 50, q(opts.cwd or "/"), q("sh -c " .. q(script)))
  local text, code = sh(cmd)
  if code ~= 0 then error("support.tmux: cannot start tmux: " .. text, 2) end

  local t = { dir = dir, sock = sock }

  local function tmux(args)
    local out, c = sh("tmux -S " .. q(sock) .. " " .. args)
    return out, c
  end

  -- The screen and its history as lines, wrapped lines joined, trailing
  -- spaces and trailing empty lines dropped.
  function t.lines(escapes)
    local text_ = tmux("capture-pane -p -J -S - -t t" .. (escapes and " -e" or ""))
    local lines = {}
    for l in text_:gmatch("([^\n]*)\n") do lines[#lines + 1] = (l:gsub("%s+$", "")) end
    while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
    return lines
  end

  function t.screen(since, o)
    local lines = t.lines(o and o.escapes)
    return table.concat(lines, "\n", since or 1)
  end

  -- The line where the next output shows: the current last line (the prompt).
  function t.mark()
    return math.max(1, #t.lines())
  end

  function t.type(s)
    local _, c = tmux("send-keys -t t -l " .. q(s))
    assert(c == 0, "support.tmux: send-keys failed")
  end

  function t.keys(...)
    local names = {}
    for _, k in ipairs { ... } do names[#names + 1] = q(k) end
    local _, c = tmux("send-keys -t t " .. table.concat(names, " "))
    assert(c == 0, "support.tmux: send-keys failed")
  end

  function t.line(s)
    t.type(s)
    t.keys("Enter")
  end

  -- wait(pattern, since, {plain=, timeout=, escapes=}) -> text since `since`
  function t.wait(pattern, since, o)
    o = o or {}
    local deadline = sys.now() + (o.timeout or M.TIMEOUT)
    while true do
      local lines = t.lines(o.escapes)
      for i = since or 1, #lines do
        if lines[i]:find(pattern, 1, o.plain) then
          return table.concat(lines, "\n", since or 1)
        end
      end
      if sys.now() > deadline then
        error(string.format("support.tmux: %q did not show within %s s; screen:\n%s", pattern,
          o.timeout or M.TIMEOUT, table.concat(lines, "\n")), 2)
      end
      sys.sleep(0.02)
    end
  end

  -- Wait for the program to end; returns its exit status.
  function t.exit_code(timeout)
    local text_ = t.wait("^%[exit %d+%]$", 1, { timeout = timeout })
    return tonumber(text_:match("%[exit (%d+)%]$"))
  end

  function t.stop()
    live[t] = nil
    tmux("kill-server")
    os.execute("rm -rf " .. q(dir))
  end

  live[t] = true
  return t
end

return M
