-- A second process for store_spec.lua: opens the store at PATH and does one
-- of these, so claims can be tested across processes.
--   hold PATH APP RID PHASE LEASE READY  claim, set PHASE, write READY, sleep until killed
--   exit PATH APP RID PHASE              claim, set PHASE, exit without releasing
--   claim PATH APP RID [LEASE]           claim once, print "ok pid phase reason", keep it
--   loop PATH APP RID N OUT              N times: claim, read, commit counter+1; log to OUT
--   crash PATH APP RID READY             commit counter+1 forever; READY after the first
-- The counter lives in the token: expires_at = n, access_token = "at-n",
-- refresh_token = "rt-n", so a half-written commit would show.
local store = require "ghl.store"
local sys = require "ghl.sys"

local mode, path, app, rid = arg[1], arg[2], arg[3], arg[4]
local db = assert(store.open(path))

local function touch(file, text)
  local f = assert(io.open(file .. ".tmp", "w"))
  f:write(text or "")
  f:close()
  assert(os.rename(file .. ".tmp", file))
end

-- Wait for the claim; returns prev.
local function claim(lease)
  while true do
    local ok, info = db:claim(app, rid, lease)
    assert(ok ~= nil, tostring(info))
    if ok then return info end
    sys.sleep(0.0005 + math.random() * 0.002)
  end
end

-- One refresh under the claim; returns the old n, the new n and the
-- refresh token "presented".
local function bump()
  claim(30)
  local t = assert(db:get_token(app, rid))
  local n = t.expires_at
  assert(t.access_token == "at-" .. n and t.refresh_token == "rt-" .. n, "mixed token read")
  assert(db:claim_phase(app, rid, "sending"))
  assert(db:commit_refresh(app, rid, { access_token = "at-" .. (n + 1),
    refresh_token = "rt-" .. (n + 1), expires_at = n + 1 }))
  return n, n + 1, t.refresh_token
end

if mode == "hold" then
  assert(db:claim(app, rid, tonumber(arg[6])))
  if arg[5] ~= "claimed" then assert(db:claim_phase(app, rid, arg[5])) end
  touch(arg[7], tostring(sys.getpid()))
  while true do sys.sleep(0.05) end
elseif mode == "exit" then
  assert(db:claim(app, rid))
  if arg[5] ~= "claimed" then assert(db:claim_phase(app, rid, arg[5])) end
  os.exit(0, false)   -- no close: the claim stays behind
elseif mode == "claim" then
  local ok, info = db:claim(app, rid, tonumber(arg[5]))
  io.write(tostring(ok), " ", tostring(info and info.pid), " ", tostring(info and info.phase),
    " ", tostring(info and info.reason), "\n")
elseif mode == "loop" then
  math.randomseed(sys.getpid())
  local out = assert(io.open(arg[6], "w"))
  out:setvbuf("line")
  for _ = 1, tonumber(arg[5]) do
    local _, new, presented = bump()
    out:write(new, " ", presented, " ", sys.getpid(), "\n")
  end
  out:close()
elseif mode == "crash" then
  math.randomseed(sys.getpid())
  bump()
  touch(arg[5], tostring(sys.getpid()))
  while true do bump() end
else
  error("unknown mode " .. tostring(mode))
end
db:close()
