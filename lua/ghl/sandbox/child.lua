-- ghl.sandbox.child: the prelude of a recipe's own Lua state (made by the
-- native ghl._sandbox, driven by ghl.sandbox in the host). It runs first,
-- in that state, with the natives the state has: print, the embedded
-- library modules it may load, and its own ghl.error and cjson. It trims
-- the standard library to what a recipe may use, and gives the recipe a
-- `ghl` whose client, csv and require ask the host: each such call yields
-- {op = ..., ...} out of the state, and the host answers with plain data
-- ({ok = true, value = v} or {ok = false, err = {...}}). Nothing here is a
-- security boundary: the host checks every request it is asked to make.
-- What crosses back is plain data, so the recipe may change anything in
-- this state: it only ever changes its own copy.
-- Entry points for the host (returned): load(text, chunkname) -> manifest;
-- main(params, client_fields, location) -> the recipe's result.
local natives = ...

local E = natives.error
local cjson_safe = natives.cjson_safe
local raw_load, raw_error, pack, unpack = load, error, table.pack, table.unpack
local co_create, co_resume, co_yield, co_status = coroutine.create, coroutine.resume, coroutine.yield,
  coroutine.status

-- ---- The standard library, trimmed ----

local G = _G
G.dofile, G.loadfile = nil, nil
string.dump = nil
do
  local os_lib = os
  G.os = { time = os_lib.time, clock = os_lib.clock, date = os_lib.date, difftime = os_lib.difftime }
end
G.print = natives.print   -- (the host may collect it instead: see main's capture)

-- load takes text only: a binary chunk is not verified by Lua.
function G.load(...)
  local chunk, name, _, env = ...
  if select("#", ...) >= 4 then return raw_load(chunk, name, "t", env) end
  return raw_load(chunk, name, "t")
end

local gc = collectgarbage
function G.collectgarbage(opt, ...)
  if opt == nil or opt == "collect" or opt == "count" or opt == "step" then return gc(opt, ...) end
  raw_error("collectgarbage('" .. tostring(opt) .. "') is not available in a recipe", 2)
end

-- ---- Asking the host ----

local BRIDGE = {}   -- the tag of a yield meant for the host

-- A yield tagged BRIDGE from inside a coroutine of the recipe's goes on
-- out to the host, and the host's answer back in, so requests work inside
-- coroutine.wrap (pagination) and the recipe's own coroutines.
local function pass(co, ok, tag, ...)
  if ok and tag == BRIDGE and co_status(co) == "suspended" then
    return pass(co, co_resume(co, co_yield(BRIDGE, ...)))
  end
  return ok, tag, ...
end

function coroutine.resume(co, ...)
  return pass(co, co_resume(co, ...))
end

function coroutine.wrap(f)
  local co = co_create(f)
  return function(...)
    local r = pack(coroutine.resume(co, ...))
    if not r[1] then raw_error(r[2], 0) end
    return unpack(r, 2, r.n)
  end
end

-- ask(op) -> the host's value, or a raise of its error.
local function ask(op)
  local answer = co_yield(BRIDGE, op)
  if type(answer) ~= "table" then raw_error("the host gave no answer", 0) end
  if answer.ok then return answer.value end
  if answer.mistake then raw_error(answer.mistake, 3) end
  raw_error(E.new(answer.err or { kind = "sandbox", message = "refused" }), 0)
end

-- print: straight to the run's output, or, when main was told to capture
-- (a fan-out groups each location's output under its header), to the
-- host, where it can yield (not inside a C boundary like table.sort's).
local native_print, to_string, yieldable = natives.print, tostring, coroutine.isyieldable
local capture = false
function G.print(...)
  if not capture or not yieldable() then return native_print(...) end
  local n, parts = select("#", ...), {}
  for i = 1, n do parts[i] = to_string((select(i, ...))) end
  ask { op = "print", text = table.concat(parts, "\t", 1, n) }
end

-- ---- require ----

local loaded = { ["ghl.error"] = E, cjson = natives.cjson, ["cjson.safe"] = cjson_safe, ["ghl.json"] = natives.json }

local function refuse(msg, hint)
  raw_error(E.new { kind = "sandbox", message = msg,
    hint = hint or "recipes run sandboxed; run it with --trust if you trust its author" }, 0)
end

function G.require(name)
  if type(name) ~= "string" then raw_error("require: module name must be a string", 2) end
  local v = loaded[name]
  if v ~= nil then return v end
  local src, chunkname = natives.embedded(name)
  local fn, err
  if src then
    fn, err = raw_load(src, chunkname, "b", G)   -- the binary's own bytecode
  elseif name:match("^ghl[%._]") or name:match("^cjson") or not name:match("^[%w_]+$") and
         not name:match("^[%w_]+%.[%w_.]+$") then
    refuse(("require '%s' is not allowed in a recipe: only the ghl library modules and Lua files next to the recipe are"):format(name))
  else
    local file = ask { op = "require", name = name }
    fn, err = raw_load(file.text, "@" .. file.path, "t", G)
  end
  if not fn then raw_error(err, 2) end
  v = fn(name)
  if v == nil then v = true end
  loaded[name] = v
  return v
end

-- ---- The client ----

local Client = {}
local R -- ghl.resource, on first use

local function resources()
  R = R or G.require "ghl.resource"
  return R
end

local Raw = { __index = {
  json = function(r)
    if r.dry_run then return r.dry_run end
    if r.body == "" then return nil, E.new { kind = "decode", message = "empty reply" } end
    local v, err = cjson_safe.decode(r.body)
    if v == nil then return nil, E.new { kind = "decode", message = "reply is not valid JSON: " .. tostring(err) } end
    return v
  end,
} }

Client.__index = function(c, k)
  local v = Client[k]
  if v ~= nil then return v end
  local r = resources()
  if r.NAMES[k] then
    local view = r.bind(G.require("ghl." .. k), c)
    rawset(c, k, view)
    return view
  end
end
Client.__tostring = function(c)
  return "ghl.client (" .. tostring(c.location or c.company) .. ")"
end

local OPTS = { "query", "body", "data", "form", "version", "raw", "timeout", "retry", "headers" }

local function plain_opts(opts)
  local o = {}
  if type(opts) == "table" then
    for _, k in ipairs(OPTS) do o[k] = opts[k] end
  end
  return o
end

function Client:request(method, path, opts)
  local o = plain_opts(opts)
  local v = ask { op = "request", method = method, path = path, opts = o }
  if o.raw and type(v) == "table" then
    if v.error then v.error = E.new(v.error) end
    return setmetatable(v, Raw)
  end
  return v
end

function Client:get(path, query, opts)
  opts = plain_opts(opts)
  opts.query = query or opts.query
  return self:request("GET", path, opts)
end

for _, m in ipairs { "post", "put", "patch", "delete" } do
  Client[m] = function(self, path, body, opts)
    opts = plain_opts(opts)
    opts.body = body
    return self:request(m:upper(), path, opts)
  end
end

function Client:paginate(path, params, o)
  ask { op = "check", path = path }   -- the host's word on the path, before any lookup
  return G.require("ghl.client.paginate").iterate(self, path, params, o)
end

-- batch(requests, {concurrency=, each=}): the host runs them concurrently.
function Client:batch(requests, o)
  o = type(o) == "table" and o or {}
  local list = {}
  for i, r in ipairs(type(requests) == "table" and requests or {}) do
    if type(r) ~= "table" then raw_error("batch: request " .. i .. " must be a table", 2) end
    list[i] = { method = r.method or r[1] or "GET", path = r.path or r[2], query = r.query, body = r.body,
                version = r.version, retry = r.retry }
  end
  local out = ask { op = "batch", requests = list, concurrency = o.concurrency }
  local results, failed = {}, 0
  for i = 1, #list do
    local a = out[i] or { ok = false, err = { kind = "sandbox", message = "no answer" } }
    local v = a.ok and a.value or E.new(a.err)
    if not a.ok then failed = failed + 1 end
    if o.each then o.each(i, v) else results[i] = v end
  end
  if o.each then return failed end
  return results
end

function Client:rate()
  return ask { op = "rate" }
end

function Client:prepare(method, path, opts)
  return ask { op = "prepare", method = method, path = path, opts = plain_opts(opts) }
end

local function new_client(fields)
  local c = {}
  for k, v in pairs(fields or {}) do c[k] = v end
  return setmetatable(c, Client)
end

-- ---- ghl.csv: files are the host's ----

local csv = {}

-- read(path_or_text, opts) -> iterator of row, line (rows come over in
-- pages from the host).
function csv.read(arg, o)
  if type(arg) ~= "string" then raw_error("csv.read: expected a path or CSV text, got " .. type(arg), 2) end
  local page = ask { op = "csv_read", source = arg, opts = type(o) == "table" and o or nil }
  local i = 0
  return function()
    while true do
      i = i + 1
      if page.rows[i] ~= nil then return page.rows[i], page.lines[i] end
      if page.done then return nil end
      page = ask { op = "csv_next", id = page.id }
      i = 0
    end
  end
end

function csv.parse(text, o)
  if type(text) ~= "string" then raw_error("csv.parse: expected CSV text, got " .. type(text), 2) end
  return ask { op = "csv_parse", text = text, opts = type(o) == "table" and o or nil }
end

function csv.encode(rows, o)
  return ask { op = "csv_encode", rows = rows, opts = type(o) == "table" and o or nil }
end

function csv.write(path, rows, o)
  return ask { op = "csv_write", path = path, rows = rows, opts = type(o) == "table" and o or nil }
end

-- ---- ghl ----

local ghl = G.require "ghl"
loaded.ghl = ghl
G.ghl = ghl
getmetatable(ghl).__complete = nil   -- the REPL's list of names, host modules among them
rawset(ghl, "csv", csv)
loaded["ghl.csv"] = csv
rawset(ghl, "json", natives.json)

-- parallel(fns, {each=}): inside a recipe the functions run in turn (their
-- requests go to the host one at a time); the results are as ghl.parallel's.
-- client:batch is concurrent.
function ghl.parallel(fns, o)
  o = type(o) == "table" and o or {}
  local results, failed = {}, 0
  for i, f in ipairs(fns) do
    local ok, v = xpcall(f, function(e)
      if E.is(e) then return e end
      return E.new { kind = "error", message = tostring(e) }
    end, i)
    if not ok then failed = failed + 1 end
    if o.each then o.each(i, v) else results[i] = v end
  end
  if o.each then return failed end
  return results
end

function ghl.client()
  refuse("a recipe gets its client as the second argument of its main function; it cannot make another",
    "use the client it is given: return function(params, client, location) ... end")
end

function ghl.each_location()
  refuse("a recipe cannot fan out by itself: it runs once per location with 'ghlua run --all-locations'",
    "run it with --all-locations")
end

-- ---- Entry points ----

local api = {}
local main

-- load(text, chunkname) -> the manifest as the recipe gave it (the host
-- checks it).
function api.load(text, chunkname)
  local manifest
  G.recipe = function(m)
    if manifest then refuse("recipe{...} is called twice") end
    manifest = m
    return m
  end
  local chunk, err = raw_load(text, chunkname, "t", G)
  if not chunk then return { compile_error = err } end
  local m = chunk()
  if type(m) == "function" then main = m end
  return { manifest = manifest, has_main = main ~= nil, returned = type(m) }
end

-- main(params, client_fields, location, {capture=}) -> the recipe's result.
function api.main(params, fields, location, opts)
  if not main then raw_error("the recipe has no main function", 0) end
  capture = type(opts) == "table" and opts.capture == true
  return main(params, new_client(fields), location)
end

return api
