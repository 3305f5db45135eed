-- store: a crafted or corrupted token store file, opened and used through
-- the store's methods (src/store.c: the schema check, row decoding, the
-- claim reading, writes into a damaged file). The input is the database
-- file (the seeds are real stores with apps, tokens, a claim, key/values
-- and events, on 512-byte pages). Checked: every method returns a value
-- or nil, ghl.error (nothing else raises); rows are tables of strings,
-- numbers and booleans keyed by column name.
local store = require "ghl.store"
local sys = require "ghl.sys"
local fuzz = require "fuzz"
local check = require "check"

local path = fuzz.tmpdir() .. "/store.db"

local function row_ok(r, what)
  check.truth(type(r) == "table", what .. " is a " .. type(r))
  for k, v in pairs(r) do
    check.truth(type(k) == "string", what .. " has a key of type " .. type(k))
    local t = type(v)
    check.truth(t == "string" or t == "number" or t == "boolean", what .. "." .. k .. " is a " .. t)
  end
end

-- Call db:method(...): a value (rows checked), or nil, ghl.error.
local function call(db, method, ...)
  local ok, v, err = check.pcall(db[method], db, ...)
  if not ok then error(v, 0) end   -- a ghl.error raised, or a bug
  if v == nil and err ~= nil then check.expected(err) end
  return v
end

local function rows(db, method, ...)
  local list = call(db, method, ...)
  if type(list) == "table" then
    for i, r in ipairs(list) do row_ok(r, method .. "[" .. i .. "]") end
  end
  return list or {}
end

local function one(db, method, ...)
  local r = call(db, method, ...)
  if r ~= nil and r ~= false then row_ok(r, method) end
  return r
end

return function(data)
  for _, sfx in ipairs { "", "-wal", "-shm" } do os.remove(path .. sfx) end
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  assert(sys.chmod(path, tonumber("600", 8)))
  local db, err = store.open(path)
  if not db then check.expected(err); return end
  local _ <close> = db
  call(db, "check")
  for _, a in ipairs(rows(db, "list_apps")) do
    if type(a.name) == "string" then one(db, "get_app", a.name) end
  end
  for _, t in ipairs(rows(db, "find_tokens", {})) do
    if type(t.app) == "string" and type(t.resource_id) == "string" then
      one(db, "get_token", t.app, t.resource_id)
      call(db, "claim", t.app, t.resource_id, 30)
      call(db, "claim_phase", t.app, t.resource_id, "sending")
      call(db, "commit_refresh", t.app, t.resource_id, { access_token = "a", refresh_token = "r", expires_at = 1 })
      call(db, "set_status", t.app, t.resource_id, "ok")
    end
  end
  rows(db, "find_tokens", { app = "default", location = "loc1", kind = "oauth" })
  call(db, "kv_get", "fuzz", "key")
  call(db, "kv_put", "fuzz", "key", "value")
  for _, e in ipairs(rows(db, "list_events", {})) do
    if type(e.id) == "string" then
      one(db, "get_event", e.id)
      call(db, "retry_event", e.id)
    end
  end
  call(db, "put_event", { id = "evt-fuzz", body = "{}", received_at = 1 })
  call(db, "set_event_status", "evt-fuzz", "handled")
  call(db, "claim", "default", "loc1", 30)
  call(db, "release", "default", "loc1")
end
