-- Peak memory of a command, split the way the kernel counts it:
--   ghlua bench/peakmem.lua [--runs N] CMD [ARG...]
-- runs CMD N times (default 3; its stdout goes to /dev/null) and samples
-- /proc/PID/smaps_rollup every 0.5 ms while it runs. Prints, per run, the
-- peak in KiB of: Rss (what /usr/bin/time's peak counts: every resident
-- page mapped), Private (Private_Clean + Private_Dirty: what this process
-- alone holds), Anonymous (heap and stacks) and Shared (Shared_Clean +
-- Shared_Dirty: mostly the libraries' file pages, which the page cache
-- shares with every process that maps them). Sampling can miss a peak
-- shorter than the interval; the figures are for comparing programs run
-- the same way. Linux only.
local sys = require "ghl.sys"

local runs, first = 3, 1
if arg[1] == "--runs" then runs, first = assert(tonumber(arg[2]), "--runs takes a number"), 3 end
local cmd = table.move(arg, first, #arg, 1, {})
if #cmd == 0 then
  io.stderr:write("usage: ghlua bench/peakmem.lua [--runs N] CMD [ARG...]\n")
  os.exit(2)
end

local FIELDS = { "Rss", "Private", "Anonymous", "Shared" }

local function sample(pid, peak)
  local f = io.open("/proc/" .. pid .. "/smaps_rollup")
  if not f then return end
  local v = {}
  for line in f:lines() do
    local k, n = line:match("^([%w_]+):%s+(%d+) kB")
    if k then v[k] = tonumber(n) end
  end
  f:close()
  local now = {
    Rss = v.Rss, Anonymous = v.Anonymous,
    Private = (v.Private_Clean or 0) + (v.Private_Dirty or 0),
    Shared = (v.Shared_Clean or 0) + (v.Shared_Dirty or 0),
  }
  for _, k in ipairs(FIELDS) do
    if now[k] and now[k] > peak[k] then peak[k] = now[k] end
  end
end

for _ = 1, runs do
  local pid = assert(sys.spawn(cmd, { stdout = "/dev/null" }))
  local peak = { Rss = 0, Private = 0, Anonymous = 0, Shared = 0 }
  local how, code
  repeat
    sample(pid, peak)
    sys.sleep(0.0005)
    how, code = sys.waitpid(pid, true)
  until how
  local out = {}
  for _, k in ipairs(FIELDS) do out[#out + 1] = ("%s=%d"):format(k, peak[k]) end
  print(table.concat(out, " ") .. (" (%s %d)"):format(how, code))
end
