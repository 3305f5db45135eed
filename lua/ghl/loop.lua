-- ghl.loop: concurrency without threads. Functions run as coroutines in one
-- Lua state; an HTTP request made inside one (through loop.request, which
-- every part of the library uses) starts a libcurl transfer on the shared
-- multi handle and yields, and loop.sleep yields too. The scheduler drives
-- libcurl and resumes each coroutine when its transfer finishes or its
-- sleep ends. Outside a scheduler the same calls simply block.
--   loop.run(fns, {concurrency=N, progress=bool}) -> results in order, each
--   the function's first value or its error (a ghl.error; any other error
--   is wrapped in one of kind "error" with a traceback). A "done/total"
--   progress line goes to stderr when it is a terminal, unless progress=false.
--   With each = function(i, v), every result goes to it as it arrives
--   (completion order) and none is kept, so memory does not grow with the
--   results; run then returns the number of errors.
-- When run ends early (Ctrl-C, or an error raised by each or by the loop
-- itself), the transfers its tasks were waiting for are closed and the
-- unfinished tasks are closed too (coroutine.close: their to-be-closed
-- variables run): nothing of the batch goes on, and nothing of it is left
-- for the next request to drive.
local http = require "ghl.http"
local sys = require "ghl.sys"
local E = require "ghl.error"

local M = {}

local sched -- the running scheduler: {tasks = {co = true}, waiting = {transfer = co}, sleeping = {co = wake}}

local function inside()
  if not sched then return nil end
  local co, main = coroutine.running()
  if main or not sched.tasks[co] then return nil end
  return co
end

-- request(req) -> response | nil, err: ghl.http.request, yielding when
-- called from a scheduled coroutine.
function M.request(req)
  local co = inside()
  if not co then return http.request(req) end
  local t, err = http.start(req)
  if not t then return nil, err end
  sched.waiting[t] = co
  coroutine.yield()
  return t:response()
end

-- sleep(seconds): yields inside a scheduler, blocks outside.
function M.sleep(s)
  local co = inside()
  if not co then
    local ok, err = sys.sleep(s)
    if not ok then error(err, 0) end
    return
  end
  sched.sleeping[co] = sys.now() + s
  coroutine.yield()
end

local function wrap(f, i)
  return coroutine.create(function()
    local ok, v = xpcall(f, function(e)
      if E.is(e) then return e end
      return E.new { kind = "error", message = tostring(e), traceback = debug.traceback(tostring(e), 2) }
    end, i)
    return ok, v
  end)
end

function M.run(fns, opts)
  opts = opts or {}
  if sched then error("ghl.parallel cannot be nested", 2) end
  local n = #fns
  local limit = math.max(1, math.floor(opts.concurrency or 16))
  local results, ready, done, nexti, active, failed = {}, {}, 0, 1, 0, 0
  local each = opts.each
  local index = {}
  local progress = opts.progress ~= false and sys.isatty(2)
  sched = { tasks = {}, waiting = {}, sleeping = {} }
  local function step(co)
    local okr, ok, v = coroutine.resume(co)
    if coroutine.status(co) == "dead" then
      sched.tasks[co] = nil
      local i = index[co]
      index[co] = nil
      if not okr then v = E.new { kind = "error", message = tostring(ok) } end
      done, active = done + 1, active - 1
      if each then
        if okr and ok == false or not okr then failed = failed + 1 end
        each(i, v)
      else
        results[i] = v
      end
      if progress then io.stderr:write(("\r%d/%d"):format(done, n)) end
    end
  end
  local ok, err = pcall(function()
    while done < n do
      -- start new tasks up to the concurrency limit
      while active < limit and nexti <= n do
        local co = wrap(fns[nexti], nexti)
        index[co] = nexti
        sched.tasks[co] = true
        ready[#ready + 1] = co
        nexti, active = nexti + 1, active + 1
      end
      -- run everything that is ready
      while #ready > 0 do
        local batch = ready
        ready = {}
        for _, co in ipairs(batch) do step(co) end
      end
      if done >= n then break end
      -- wait for transfers or the next wake-up
      local now, wake = sys.now(), math.huge
      for co, t in pairs(sched.sleeping) do
        if t <= now then sched.sleeping[co] = nil; ready[#ready + 1] = co
        elseif t < wake then wake = t end
      end
      if #ready == 0 then
        if next(sched.waiting) then
          local finished, perr = http.perform(math.min(wake - now, 1))
          if not finished then error(perr, 0) end
          for _, t in ipairs(finished) do
            local co = sched.waiting[t]
            if co then sched.waiting[t] = nil; ready[#ready + 1] = co end
          end
        elseif wake < math.huge then
          local sok, serr = sys.sleep(wake - now)
          if not sok then error(serr, 0) end
        end
      end
    end
  end)
  local s = sched
  sched = nil
  if not ok then
    for t in pairs(s.waiting) do t:close() end
    for co in pairs(s.tasks) do
      if coroutine.status(co) == "suspended" then coroutine.close(co) end
    end
  end
  if progress then io.stderr:write("\r\27[K") end
  if not ok then error(err, 0) end
  if each then return failed end
  return results
end

return M
