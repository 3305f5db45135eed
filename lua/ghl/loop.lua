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
--   loop.map(n, call, opts): the same over call(1) .. call(n).
--   A run starts at most `concurrency` coroutines: each takes the next
--   function when its own is done.
-- When run ends early (Ctrl-C, or an error raised by each or by the loop
-- itself), the transfers its tasks were waiting for are closed and the
-- unfinished tasks are closed too (coroutine.close: their to-be-closed
-- variables run): nothing of the batch goes on, and nothing of it is left
-- for the next request to drive.
-- Waiting for one another (ghl.client's throttle queues its waiters):
--   loop.current() -> the running task's coroutine, or nil outside a
--   scheduler (or in a coroutine of the caller's own);
--   loop.park([seconds]) suspends the running task until loop.wake(co), or
--   until `seconds` have passed; it costs nothing while it waits (no
--   polling, no timer without seconds);
--   loop.wake(co) makes a parked or sleeping task ready; anything else is
--   left alone (a task waiting for its transfer is never woken early).
-- Timers are kept in a binary heap, so a thousand sleeping tasks cost
-- log(n) per wake-up, and the loop never spins: with nothing to run, no
-- transfer, no timer and only parked tasks left, run raises (a task
-- waits for a wake that cannot come).
local http = require "ghl.http"
local sys = require "ghl.sys"
local E = require "ghl.error"
local notice = require "ghl.notice"

local M = {}

-- The running scheduler: tasks = {co = true}, waiting = {transfer = co},
-- timers (a min-heap of {at, co}), timer = {co = its heap entry},
-- parked = {co = true}, ready (coroutines to resume, in order).
local sched

local function inside()
  if not sched then return nil end
  local co, main = coroutine.running()
  if main or not sched.tasks[co] then return nil end
  return co
end
M.current = inside

-- ---- Timers: a binary min-heap on `at`; a cancelled entry stays in the
-- heap until it comes up (sched.timer[co] no longer names it). ----

local function heap_push(h, e)
  local i = #h + 1
  h[i] = e
  while i > 1 do
    local p = i // 2
    if h[p].at <= e.at then break end
    h[i], h[p] = h[p], e
    i = p
  end
end

local function heap_pop(h)
  local n = #h
  local top = h[1]
  local last = h[n]
  h[n] = nil
  n = n - 1
  if n > 0 then
    local i = 1
    while true do
      local l, r, m = 2 * i, 2 * i + 1, i
      local mv = last
      if l <= n and h[l].at < mv.at then m, mv = l, h[l] end
      if r <= n and h[r].at < mv.at then m = r end
      if m == i then break end
      h[i] = h[m]
      i = m
    end
    h[i] = last
  end
  return top
end

local function set_timer(co, at)
  local e = { at = at, co = co }
  sched.timer[co] = e
  heap_push(sched.timers, e)
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
  set_timer(co, sys.now() + s)
  coroutine.yield()
end

-- park([seconds]): inside a scheduler, wait for loop.wake(co) or for
-- `seconds`; outside one, sleep `seconds` (nothing else could wake it).
function M.park(s)
  local co = inside()
  if not co then
    if not s then error("loop.park outside ghl.parallel needs a time limit", 2) end
    return M.sleep(s)
  end
  if s then set_timer(co, sys.now() + s) else sched.parked[co] = true end
  coroutine.yield()
end

-- wake(co): a parked or sleeping task of the running scheduler is resumed
-- on the scheduler's next turn (this one, when it is running tasks).
function M.wake(co)
  local sc = sched
  if not sc then return end
  if sc.parked[co] then
    sc.parked[co] = nil
  elseif sc.timer[co] then
    sc.timer[co] = nil
  else
    return
  end
  sc.ready[#sc.ready + 1] = co
end

-- A task's body: f(i) under xpcall, its error made a ghl.error. A task
-- runs in a worker coroutine that takes the next task when it is done
-- (it yields FINISHED with the result and is resumed with the next f and
-- i), so a run of many tasks costs as many coroutines as run at once, and
-- no closure per task.
local function task_error(e)
  if E.is(e) then return e end
  return E.new { kind = "error", message = tostring(e), traceback = debug.traceback(tostring(e), 2) }
end

local FINISHED = {}
local yield = coroutine.yield

local function worker(f, i)
  while true do
    f, i = yield(FINISHED, xpcall(f, task_error, i))
  end
end

local resume = coroutine.resume

-- The tasks fns[i](i), or call(i), for i = 1..n (M.run, M.map).
local function run(n, fns, call, opts)
  opts = opts or {}
  local limit = math.max(1, math.floor(opts.concurrency or 16))
  local results, done, nexti, active, failed = {}, 0, 1, 0, 0
  local each = opts.each
  local index = {}   -- co -> its task's index; negative until the task's first resume
  local progress = opts.progress ~= false and sys.isatty(2)
  sched = { tasks = {}, waiting = {}, timers = {}, timer = {}, parked = {}, ready = {} }
  local sc = sched
  local spare = {}
  local function finish(co, i, v, failed_task)
    sc.timer[co], sc.parked[co] = nil, nil
    done, active = done + 1, active - 1
    if each then
      if failed_task then failed = failed + 1 end
      each(i, v)
    else
      results[i] = v
    end
    if progress then notice.status(("%d/%d"):format(done, n)) end
  end
  local function step(co)
    local i = index[co]
    local okr, mark, ok, v
    if i < 0 then
      i = -i
      index[co] = i
      okr, mark, ok, v = resume(co, call or fns[i], i)
    else
      okr, mark, ok, v = resume(co)
    end
    while mark == FINISHED and okr do
      -- the task is done: its worker takes the next task at once; with
      -- none left it stays suspended until the run ends (and is closed)
      finish(co, i, v, ok == false)
      if nexti > n then
        index[co] = nil
        return
      end
      i, nexti, active = nexti, nexti + 1, active + 1
      index[co] = i
      okr, mark, ok, v = resume(co, call or fns[i], i)
    end
    if not okr then   -- the worker itself broke (out of memory): it is dead
      sc.tasks[co] = nil
      index[co] = nil
      finish(co, i, E.new { kind = "error", message = tostring(mark) }, true)
    end
  end
  local ok, err = pcall(function()
    while done < n do
      -- start new tasks up to the concurrency limit
      while active < limit and nexti <= n do
        local co = coroutine.create(worker)
        sc.tasks[co] = true
        index[co] = -nexti
        sc.ready[#sc.ready + 1] = co
        nexti, active = nexti + 1, active + 1
      end
      -- run everything that is ready (a task may wake others meanwhile,
      -- into the other of the two lists, which are swapped, not made anew)
      while sc.ready[1] do
        local batch = sc.ready
        sc.ready, spare = spare, batch
        for j = 1, #batch do
          local co = batch[j]
          batch[j] = nil
          step(co)
        end
      end
      if done >= n then break end
      -- the timers that are due, then wait for transfers or the next one
      local now, wake = sys.now(), math.huge
      local h = sc.timers
      while h[1] do
        local e = h[1]
        if sc.timer[e.co] ~= e then heap_pop(h)        -- cancelled
        elseif e.at <= now then
          heap_pop(h)
          sc.timer[e.co] = nil
          sc.ready[#sc.ready + 1] = e.co
        else wake = e.at; break end
      end
      if #sc.ready == 0 and not (active < limit and nexti <= n) then
        if next(sc.waiting) then
          local finished, perr = http.perform(math.min(wake - now, 1))
          if not finished then error(perr, 0) end
          for j = 1, #finished do
            local t = finished[j]
            local co = sc.waiting[t]
            if co then sc.waiting[t] = nil; sc.ready[#sc.ready + 1] = co end
          end
        elseif wake < math.huge then
          local sok, serr = sys.sleep(wake - now)
          if not sok then error(serr, 0) end
        else
          local parked = 0
          for _ in pairs(sc.parked) do parked = parked + 1 end
          error(("ghl.parallel: %d unfinished task%s, %d of them parked, and nothing to wait for: "
            .. "no transfer, no timer"):format(active, active == 1 and "" or "s", parked), 0)
        end
      end
    end
  end)
  sched = nil
  if not ok then
    for t in pairs(sc.waiting) do t:close() end
    for co in pairs(sc.tasks) do
      if coroutine.status(co) == "suspended" then coroutine.close(co) end
    end
  end
  if progress then notice.status(nil) end
  if not ok then error(err, 0) end
  if each then return failed end
  return results
end

function M.run(fns, opts)
  if sched then error("ghl.parallel cannot be nested", 2) end
  return run(#fns, fns, nil, opts)
end

-- map(n, call, opts) -> like run over the tasks call(1) .. call(n) (one
-- function for the whole run, not a closure per task: ghl.client's batch).
function M.map(n, call, opts)
  if sched then error("ghl.parallel cannot be nested", 2) end
  return run(n, nil, call, opts)
end

return M
