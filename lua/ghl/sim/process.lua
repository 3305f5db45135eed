-- ghl.sim.process: the library's launcher of a `ghlua sim` child process
-- (the REPL's :sim, the test helper). It requires natives and library
-- modules only, never an app module.
--
--   start{args =, env =, home =, exe =, ready_timeout =, stop_timeout =}
--     -> handle, or nil, err (a ghl.error, kind "sim")
--   args           the simulator's flags, after the ones start() gives:
--                  ghlua sim --port 0 --ready-file F --quiet ARGS...
--   env            {NAME = value} for the child, on top of this process's
--                  environment (false removes a variable)
--   home           GHLUA_HOME for the child: a path, or true for a private
--                  one (handle.home) that stop() removes; nil leaves it to
--                  env and the environment
--   exe            the ghlua binary (default: this process's own)
--   ready_timeout  seconds to wait for the ready file (default 10)
--   stop_timeout   seconds stop() waits after SIGTERM before SIGKILL
--                  (default 5)
--
-- The child is started with ghl.sys.spawn (an argv, no shell) in a session
-- of its own (setsid: Ctrl-C at a terminal never reaches it), stdin from
-- /dev/null, stdout and stderr into handle.log. Its files live in a
-- private directory (handle.dir, 0700) that stop() removes.
--
-- handle: url, pid, info (the ready file, decoded), dir, ready_file, log,
-- home (the private home, or nil), argv (the command it ran), and
--   alive()   whether it still runs (reaps it once it ended)
--   output()  what it printed so far
--   stop()    SIGTERM to its process group, a wait (stop_timeout), then
--             SIGKILL; removes its files. Returns true when it exited
--             cleanly (by itself, its ready file removed on the way out);
--             later calls return the same.
-- A failed start's err carries output (what the child printed) and argv;
-- nothing of it is left running or on disk.
--
-- Every simulator started here and still running when the Lua state
-- closes (the end of the process, os.exit(code, true)) is stopped then, so
-- none outlives the program that started it.
local cjson = require "cjson.safe"
local E = require "ghl.error"
local sys = require "ghl.sys"

local M = {}

M.READY_TIMEOUT = 10
M.STOP_TIMEOUT = 5

local slurp = require("ghl.util").slurp

-- Remove path and, when it is a directory, everything under it (never
-- following a symbolic link).
local function remove_tree(path)
  if sys.lstat(path) == "dir" then
    for _, name in ipairs(sys.listdir(path) or {}) do remove_tree(path .. "/" .. name) end
  end
  os.remove(path)
end

-- The simulators started and not yet stopped (stopped at lua_close).
local live = {}
M._sentinel = setmetatable({}, { __gc = function()
  for h in pairs(live) do pcall(h.stop) end
end })

local function private_dir()
  local dir = os.tmpname()   -- a unique name; the directory replaces the file
  os.remove(dir)
  local ok, err = sys.mkdir(dir, tonumber("700", 8))
  if not ok then return nil, err end
  return dir
end

function M.start(opts)
  opts = opts or {}
  local exe = opts.exe or sys.realpath("/proc/self/exe")
  if not exe then error("ghl.sim.process.start: no exe given and /proc/self/exe cannot be read", 2) end
  local dir, derr = private_dir()
  if not dir then return nil, E.new { kind = "sim", message = "cannot make the simulator's directory: " .. tostring(derr) } end
  local h = { dir = dir, ready_file = dir .. "/ready.json", log = dir .. "/sim.log" }
  local env = {}
  for k, v in pairs(opts.env or {}) do env[k] = v end
  if opts.home == true then
    h.home = dir .. "/home"
    assert(sys.mkdir(h.home, tonumber("700", 8)))
    env.GHLUA_HOME = h.home
  elseif opts.home then
    env.GHLUA_HOME = opts.home
  end
  h.argv = { exe, "sim", "--port", "0", "--ready-file", h.ready_file, "--quiet" }
  for _, a in ipairs(opts.args or {}) do h.argv[#h.argv + 1] = a end
  local stop_timeout = opts.stop_timeout or M.STOP_TIMEOUT

  local status   -- how it ended, once reaped: {how, code}
  local function reap(block)
    if status then return status end
    local how, code = sys.waitpid(h.pid, not block)
    if how then status = { how, code }
    elseif how == nil then status = { "gone" } end   -- no child of ours any more
    return status
  end
  function h.alive()
    return h.pid ~= nil and reap(false) == nil
  end
  function h.output()
    return slurp(h.log) or ""
  end
  local stopped
  function h.stop()
    if stopped ~= nil then return stopped end
    live[h] = nil
    local killed = false
    if h.pid and not reap(false) then
      sys.killpg(h.pid, 15)
      local limit = sys.now() + stop_timeout
      while not reap(false) and sys.now() < limit do sys.sleep(0.02) end
      if not reap(false) then
        killed = true
        sys.killpg(h.pid, 9)
        reap(true)
      end
    end
    stopped = not killed and status ~= nil and slurp(h.ready_file) == nil
    remove_tree(dir)
    return stopped
  end

  local pid, serr = sys.spawn(h.argv, { env = env, setsid = true, stdin = "/dev/null", stdout = h.log, stderr = h.log })
  if not pid then
    remove_tree(dir)
    return nil, E.new { kind = "sim", message = "cannot start the simulator: " .. tostring(serr and serr.message or serr),
      output = "", argv = h.argv }
  end
  h.pid = pid
  live[h] = true

  local function fail(why)
    local out = h.output()
    stopped = false
    live[h] = nil
    if not reap(false) then
      sys.killpg(pid, 9)
      reap(true)
    end
    remove_tree(dir)
    return nil, E.new { kind = "sim", message = why, output = out, argv = h.argv }
  end
  local timeout = opts.ready_timeout or M.READY_TIMEOUT
  local deadline = sys.now() + timeout
  while true do
    local text = slurp(h.ready_file)
    local info = text and cjson.decode(text)
    if type(info) == "table" and info.url then
      h.info, h.url = info, info.url
      return h
    end
    if reap(false) then return fail("ghlua sim exited before it was ready") end
    if sys.now() > deadline then return fail("ghlua sim not ready after " .. timeout .. " s") end
    local ok, err = sys.sleep(0.02)
    if not ok then
      fail("interrupted")
      return nil, err
    end
  end
end

-- argv as one line a shell would run the same way (for messages only:
-- start() runs its argv directly).
function M.command_line(argv)
  local quote, out = require("ghl.util").shell_quote, {}
  for i, a in ipairs(argv) do out[i] = quote(a) end
  return table.concat(out, " ")
end

return M
