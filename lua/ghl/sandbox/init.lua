-- ghl.sandbox: running code the user does not trust (a shared recipe) in a
-- Lua state of its own (the native ghl._sandbox), with the host holding
-- everything that matters: the clients and their tokens, the store, the
-- files. The recipe's client, ghl.csv and require are stubs in its state
-- (ghl.sandbox.child) that yield requests out; this module answers them,
-- after checking each one:
--   * an API request goes only to the client's own API base: the URL the
--     client builds is parsed with libcurl's URL parser and must have the
--     base's scheme, host and port and no user, password or fragment; the
--     path must be plain (absolute, no '@', '\', '#', scheme, control
--     characters, '.' or '..' segments, also percent-encoded);
--   * with writes = false in the manifest, no write is sent (a method other
--     than GET/HEAD, unless the operations table says the route only reads,
--     like POST /contacts/search; a body on a GET counts as a write);
--   * the route must be in the operations table, and at least one of the
--     scopes it needs must be in the manifest's scopes;
--   * a file is read or written only when a parameter declared as a file
--     names it (see grant), opened inside its resolved directory without
--     following a symlink, never in a dot-directory or the store's
--     directory, and an output that exists is replaced only when allowed;
--   * require gives the embedded library modules, and Lua files beside the
--     recipe that resolve inside its directory (no symlink out).
-- A dry run records writes in the client's plan (and file writes in
-- plan.files) and sends nothing. Only plain data crosses (see the C
-- module). Limits: max_memory bytes (512 MiB by default) and a timeout in
-- seconds; either ends the run with a ghl.error of kind "limit".
-- Refusals are ghl.errors of kind "sandbox", raised in the recipe (which
-- may catch them) and, uncaught, by main.
--   local box = sandbox.new{dir=, max_memory=, timeout=, output=1|2}
--   box:load(text, chunkname) -> {manifest=, has_main=, returned=}
--   box:policy{manifest=, force=}    set what the recipe may do
--   box:grant(params, manifest)      the file parameters' capabilities
--   box:main(params, client, location) -> the recipe's result
--   box:set{mute=, output=, sink=}   printing (sink: collect main's lines)
local native = require "ghl._sandbox"
local E = require "ghl.error"
local http = require "ghl.http"
local sys = require "ghl.sys"

local M = {}

M.MAX_MEMORY = 512 * 1024 * 1024
M.CSV_PAGE = 500   -- rows per answer when the recipe reads a file

-- The embedded modules a recipe may require (pure Lua, no natives).
M.MODULES = { "ghl", "ghl.resource", "ghl.client.paginate", "ghl.paginate", "ghl.api.ops", "ghl.api.operations", "ghl.inspect",
  "ghl.contacts", "ghl.custom_fields", "ghl.custom_values", "ghl.tags", "ghl.opportunities", "ghl.users",
  "ghl.locations", "ghl.conversations", "ghl.calendars", "ghl.util" }

local Box = {}
Box.__index = Box

local function refuse(msg, hint)
  E.raise { kind = "sandbox", message = msg,
    hint = hint or "recipes run sandboxed; run it with --trust if you trust its author" }
end

-- "512 MiB" for a byte count.
function M.size_text(n)
  if n >= 1024 ^ 3 and n % 1024 ^ 3 == 0 then return ("%d GiB"):format(n // 1024 ^ 3) end
  if n >= 1024 ^ 2 then return ("%d MiB"):format(math.floor(n / 1024 ^ 2 + 0.5)) end
  return ("%d KiB"):format(math.ceil(n / 1024))
end

-- parse_size("512M") -> bytes, or nil. K, M, G (powers of 1024), with an
-- optional i/iB/B; a bare number is bytes.
function M.parse_size(s)
  local n, unit = tostring(s):match("^%s*(%d+%.?%d*)%s*([kKmMgG]?)[iI]?[bB]?%s*$")
  n = tonumber(n)
  if not n then return nil end
  local mult = ({ [""] = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3 })[unit:lower()]
  return math.floor(n * mult)
end

-- new{dir=, max_memory=, timeout=, output=} -> box (raises kind "sandbox").
function M.new(o)
  o = o or {}
  local max = o.max_memory or M.MAX_MEMORY
  local sb, err = native.new { max_memory = max, timeout = o.timeout, modules = M.MODULES, output = o.output }
  if not sb then error(err, 0) end
  return setmetatable({ sb = sb, dir = o.dir or ".", max_memory = max, timeout = o.timeout,
    files = {}, readers = {}, nreaders = 0, manifest = nil, force = false, output = o.output or 1 }, Box)
end

-- set{mute=, output=, timeout=, sink=}: sink = function(text) (or false)
-- takes what main's runs print, a line at a time, instead of the output.
function Box:set(o)
  if o.sink ~= nil then self.sink = o.sink or nil end
  if o.mute ~= nil then self.muted = o.mute and true or false end
  if o.output ~= nil then self.output = o.output end
  self.sb:set(o)
end

-- ---- Errors across the boundary ----

local ERROR_FIELDS = { "kind", "message", "hint", "status", "code", "traceId", "method", "path", "where",
  "line", "file", "body" }

-- A plain copy of a ghl.error, for the recipe.
local function plain_error(e)
  local t = {}
  for _, k in ipairs(ERROR_FIELDS) do
    local v = e[k]
    if type(v) == "string" or type(v) == "number" or type(v) == "boolean" then t[k] = v end
  end
  if type(e.meta) == "table" then t.meta = e.meta end
  return t
end

-- The host's ghl.error for what the recipe raised (a copy: plain data).
local function from_recipe(v)
  if type(v) == "table" then
    local t = {}
    for _, k in ipairs(ERROR_FIELDS) do
      local x = v[k]
      if type(x) == "string" or type(x) == "number" or type(x) == "boolean" then t[k] = x end
    end
    t.kind = type(t.kind) == "string" and t.kind or "recipe"
    t.message = t.message ~= nil and tostring(t.message) or "the recipe raised a table with no message"
    return E.new(t)
  end
  return E.new { kind = "recipe", message = tostring(v) }
end

function Box:limit_error(why)
  if why == "memory" then
    return E.new { kind = "limit", message = ("the recipe used more than its memory limit of %s"):format(
      M.size_text(self.max_memory)), hint = "give it more with --max-memory SIZE (for example --max-memory 1G)" }
  elseif why == "timeout" then
    return E.new { kind = "limit", message = ("the recipe ran longer than its time limit of %gs"):format(self.timeout or 0),
      hint = "give it more time with --timeout SECONDS" }
  elseif why == "interrupted" then
    return E.new { kind = "interrupted", message = "interrupted" }
  end
  return E.new { kind = "limit", message = "the recipe was stopped: " .. tostring(why) }
end

-- ---- Requests ----

-- The plain path rule (before the client fills placeholders and adds the
-- query): a string from the recipe, absolute, on the API host.
local function check_path(path)
  if type(path) ~= "string" then refuse("a request's path must be a string, like '/contacts/'") end
  local bare = path:match("^[^?]*")
  local why
  if path:sub(1, 1) ~= "/" then why = "it does not start with '/'"
  elseif path:sub(1, 2) == "//" then why = "it starts with '//'"
  elseif path:find("[%c\127]") then why = "it holds a control character"
  elseif path:find("[@\\#]") then why = "it holds '@', '\\' or '#'"
  elseif path:find("://", 1, true) then why = "it holds a scheme"
  else
    local decoded = bare:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    if decoded:find("[%c\127@\\#]") or decoded:find("//", 1, true) then why = "it holds an encoded '@', '\\', '#', '//' or control character" end
    for seg in (decoded .. "/"):gmatch("([^/]*)/") do
      if seg == "." or seg == ".." then why = "it holds a '.' or '..' segment" end
    end
  end
  if why then
    refuse(("a recipe may only send plain paths on the API host, like '/contacts/'; %q is refused: %s"):format(path, why))
  end
  return path
end

local METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true, HEAD = true }

local function check_method(m)
  if type(m) ~= "string" or not METHODS[m:upper()] then
    refuse(("a request's method must be GET, POST, PUT, PATCH, DELETE or HEAD, not %s"):format(tostring(m)))
  end
  return m:upper()
end

local HEADERS = { accept = true, ["content-type"] = true }

-- The request options a recipe may give (no opts.read: the host decides
-- what is a write).
local function request_opts(o)
  o = type(o) == "table" and o or {}
  local t = { query = o.query, body = o.body, data = o.data, form = o.form, raw = o.raw == true,
              retry = o.retry == true }
  if type(o.version) == "string" then t.version = o.version end
  if type(o.timeout) == "number" and o.timeout > 0 then t.timeout = o.timeout end
  if type(o.data) ~= "nil" and type(o.data) ~= "string" then refuse("opts.data must be JSON text") end
  if type(o.headers) == "table" then
    t.headers = {}
    for k, v in pairs(o.headers) do
      if type(k) ~= "string" or not HEADERS[k:lower()] or type(v) ~= "string" or v:find("[%c]") then
        refuse(("a recipe may not set the header %s"):format(tostring(k)),
          "only Accept and Content-Type; the Version header comes from the operations table or opts.version")
      end
      t.headers[k] = v
    end
  end
  return t
end

local function same_origin(a, b)
  return a and b and a.scheme == b.scheme and (a.host or ""):lower() == (b.host or ""):lower() and a.port == b.port
end

-- The guard the client calls for every request it is about to send or
-- record (ghl.client: client.guard).
function Box:guard(client, req, op)
  local u, err = http.parse_url(req.url)
  if not u then refuse("the request's URL does not parse: " .. tostring(err and err.message)) end
  self.origins = self.origins or {}
  local base = self.origins[client.base]
  if not base then
    base = assert(http.parse_url(client.base .. "/"))
    self.origins[client.base] = base
  end
  if not same_origin(u, base) or u.user or u.password or u.options or u.fragment then
    refuse("a recipe may only send requests to its API host " .. client.base)
  end
  check_path(u.path .. (u.query and ("?" .. u.query) or ""))   -- as filled from placeholders
  local m = self.manifest
  if not m then refuse("a recipe cannot send requests while it is being loaded") end
  local has_body = req.json ~= nil or req.body ~= nil or req.form ~= nil
  local reads = require("ghl.client").is_read(req.method, op) and not (req.method == "GET" and has_body)
  if not m.writes and not reads then
    refuse(("%s declares writes = false, so %s %s is not sent"):format(m.name, req.method, op and op.path or "this route"),
      "a recipe that writes says writes = true in its manifest")
  end
  if not op then
    refuse(("%s %s is not a HighLevel route ghlua knows, so its scopes cannot be checked"):format(req.method,
      (req.url:sub(#client.base + 1):gsub("%?.*", ""))), "a recipe may call the routes of the API reference only")
  end
  if #op.scopes > 0 then
    for _, s in ipairs(op.scopes) do
      if self.scopes[s] then return true end
    end
    refuse(("%s %s needs the scope %s, which %s does not declare"):format(req.method, op.path,
      table.concat(op.scopes, " or "), m.name), "declare it in the manifest's scopes")
  end
  return true
end

-- A plain copy of a raw response.
local function plain_response(resp)
  local h = {}
  for k, v in pairs(resp.headers or {}) do h[k] = v end
  return { status = resp.status, headers = h, body = resp.body,
           error = resp.error and plain_error(resp.error) or nil, dry_run = resp.dry_run }
end

local handlers = {}

function handlers.request(self, op, client)
  local method, path = check_method(op.method), check_path(op.path)
  local opts = request_opts(op.opts)
  local v = client:request(method, path, opts)
  if opts.raw and type(v) == "table" then return plain_response(v) end
  return v
end

function handlers.batch(self, op, client)
  local list = {}
  for i, r in ipairs(type(op.requests) == "table" and op.requests or {}) do
    list[i] = { method = check_method(r.method or "GET"), path = check_path(r.path), query = r.query, body = r.body,
                version = type(r.version) == "string" and r.version or nil, retry = r.retry == true }
  end
  local conc = tonumber(op.concurrency)
  local out = {}
  client:batch(list, { concurrency = conc, progress = false, each = function(i, v)
    if E.is(v) then out[i] = { ok = false, err = plain_error(v) } else out[i] = { ok = true, value = v } end
  end })
  return out
end

function handlers.check(_, op)
  check_path(op.path)
  return true
end

function handlers.rate(_, _, client)
  return client:rate()
end

function handlers.prepare(_, op, client)
  return client:prepare(check_method(op.method), check_path(op.path), request_opts(op.opts))
end

-- ---- Files ----

local function inside(root, p)
  return p == root or p:sub(1, #root + 1) == root .. "/"
end

-- The directory that holds the token store (resolved), or nil.
local function store_dir()
  local dir = require("ghl.config").store_dir()
  return dir and sys.realpath(dir)
end

-- resolve(path) -> real directory, file name; raises kind "sandbox" when
-- the rules refuse the place.
function M.resolve(path)
  if type(path) ~= "string" or path == "" or path:find("%z") then refuse("not a file name: " .. tostring(path)) end
  local dir, name = path:match("^(.*)/([^/]*)$")
  if not dir then dir, name = ".", path elseif dir == "" then dir = "/" end
  if name == "" or name == "." or name == ".." then refuse(path .. " names a directory, not a file") end
  if name:sub(1, 1) == "." then refuse(path .. ": a recipe may not use dot-files") end
  local real = sys.realpath(dir)
  if not real then E.raise { kind = "io", message = "no directory " .. dir .. " (for " .. path .. ")" } end
  for seg in real:gmatch("[^/]+") do
    if seg:sub(1, 1) == "." then refuse(("%s is inside the dot-directory %s, which a recipe may not use"):format(path, seg)) end
  end
  local sd = store_dir()
  if sd and inside(sd, real) then refuse(path .. " is inside the token store's directory, which a recipe may not use") end
  return real, name
end

-- grant(params, manifest): the capabilities of the file parameters'
-- values (resolved now, so a refused place fails before anything runs).
function Box:grant(params, m)
  self.files = {}
  for name, p in pairs(m.params) do
    local v = params[name]
    if type(v) == "string" and (p.type == "input_file" or p.type == "output_file") then
      local dir, file = M.resolve(v)
      local cap = self.files[v] or { dir = dir, name = file }
      if p.type == "input_file" then cap.read = true else cap.write = true; cap.overwrite = p.overwrite end
      self.files[v] = cap
    end
  end
end

local function capability(self, path, mode)
  local cap = type(path) == "string" and self.files[path]
  if not cap or not cap[mode] then
    refuse(("%s: a recipe may only %s files named by its %s parameters"):format(tostring(path), mode,
      mode == "read" and "input_file" or "output_file"),
      "declare the parameter with type = \"" .. (mode == "read" and "input_file" or "output_file") ..
      "\" and name the file with --param")
  end
  return cap
end

local CSV_OPTS = { header = "boolean", delim = "string", quote = "string", ragged = "boolean", strict = "boolean",
  text = "boolean", columns = "table", eol = "string" }

local function csv_opts(o)
  local t = {}
  for k, ty in pairs(CSV_OPTS) do
    if type(o) == "table" and type(o[k]) == ty then t[k] = o[k] end
  end
  return t
end

-- One page of rows from reader r.
local function page(self, id)
  local r = self.readers[id]
  local rows, lines = {}, {}
  local done = false
  while #rows < M.CSV_PAGE do
    local row, line = r.next()
    if row == nil then done = true; break end
    rows[#rows + 1], lines[#lines + 1] = row, line
  end
  if done then self.readers[id] = nil; if r.file then r.file:close() end end
  return { id = id, rows = rows, lines = lines, done = done }
end

function handlers.csv_read(self, op)
  local csv = require "ghl.csv"
  local o = csv_opts(op.opts)
  local src = op.source
  if type(src) ~= "string" then refuse("csv.read takes a path or CSV text") end
  local file
  if not (o.text or src:find("[\r\n]")) then
    local cap = capability(self, src, "read")
    local f, err = sys.open(cap.dir, cap.name, "r")
    if not f then error(err, 0) end
    file, o.file, o.name = f, f, src
  end
  local ok, it = pcall(csv.read, src, o)
  if not ok then if file then file:close() end; error(it, 0) end
  self.nreaders = self.nreaders + 1
  self.readers[self.nreaders] = { next = it, file = file }
  return page(self, self.nreaders)
end

function handlers.csv_next(self, op)
  if not self.readers[op.id] then return { id = op.id, rows = {}, lines = {}, done = true } end
  return page(self, op.id)
end

function handlers.csv_parse(_, op)
  return require("ghl.csv").parse(op.text, csv_opts(op.opts))
end

function handlers.csv_encode(_, op)
  return require("ghl.csv").encode(op.rows, csv_opts(op.opts))
end

function handlers.csv_write(self, op, client)
  local path = op.path
  local cap = capability(self, path, "write")
  if type(op.rows) ~= "table" then error("csv.write: rows must be a list", 0) end
  local csv = require "ghl.csv"
  local text = csv.encode(op.rows, csv_opts(op.opts))
  local plan = client and client.dry_run
  if plan then
    plan.files = plan.files or {}
    plan.files[#plan.files + 1] = { path = path, rows = #op.rows, bytes = #text }
    return #op.rows
  end
  local mode = (cap.written or cap.overwrite or self.force) and "w+" or "w"
  local f, err = sys.open(cap.dir, cap.name, mode)
  if not f then
    if err.kind == "exists" then
      E.raise { kind = "sandbox", message = path .. " exists and the recipe may not replace it",
        hint = "pass --force to let it overwrite the file" }
    end
    error(err, 0)
  end
  local ok, werr = f:write(text)
  f:close()
  if not ok then E.raise { kind = "io", message = "cannot write " .. path .. ": " .. tostring(werr) } end
  cap.written = true
  return #op.rows
end

-- ---- require of the recipe's own files ----

function handlers.print(self, op)
  if type(op.text) ~= "string" then error("print: no text", 0) end
  if self.muted then return end
  if self.sink then return self.sink(op.text) end
  local f = self.output == 2 and io.stderr or io.stdout
  f:write(op.text, "\n")
  f:flush()
end

function handlers.require(self, op)
  local name = op.name
  if type(name) ~= "string" or not name:match("^[%w_]+$") and not name:match("^[%w_]+%.[%w_.]+$")
     or name:find("..", 1, true) then
    refuse("require: not a module name: " .. tostring(name))
  end
  local root = sys.realpath(self.dir)
  local rel = name:gsub("%.", "/") .. ".lua"
  local real = root and sys.realpath(root .. "/" .. rel)
  if not real then
    refuse(("require '%s' is not allowed in a recipe: only the ghl library modules and Lua files next to the recipe are"):format(name))
  end
  if not inside(root, real) or real ~= root .. "/" .. rel then
    refuse(("require '%s': %s leads out of the recipe's directory (a symbolic link)"):format(name, rel))
  end
  local dir, file = real:match("^(.*)/([^/]*)$")
  local f, err = sys.open(dir, file, "r")
  if not f then error(err, 0) end
  local text = f:read("a")
  f:close()
  return { text = text, path = real }
end

-- ---- Driving the recipe's state ----

local NEEDS_CLIENT = { request = true, batch = true, rate = true, prepare = true }

-- Answer one request op from thread with client (nil while loading).
function Box:answer(op, client)
  local h = type(op) == "table" and type(op.op) == "string" and handlers[op.op]
  if h and NEEDS_CLIENT[op.op] and not client then
    return { ok = false, err = { kind = "sandbox", message = "the recipe has no client here (it is being loaded)" } }
  end
  if not h then
    return { ok = false, err = { kind = "sandbox", message = "the recipe yielded to the host outside a coroutine" } }
  end
  local ok, v = pcall(h, self, op, client)
  if ok then return { ok = true, value = v } end
  if E.is(v) then
    if v.kind == "interrupted" then error(v, 0) end
    return { ok = false, err = plain_error(v) }
  end
  return { ok = false, mistake = tostring(v) }
end

-- Run thread id to its end, answering its requests with client's help.
function Box:drive(id, client)
  local sb = self.sb
  local guarded = client and client.guard
  if client then
    client.guard = function(c, req, op) return self:guard(c, req, op) end
  end
  local ok, r = pcall(function()
    local res = table.pack(sb:resume(id))
    while res[1] == "yield" do
      res = table.pack(sb:resume(id, self:answer(res[3], client)))
    end
    return res
  end)
  if client then client.guard = guarded end   -- the client is the host's again, whatever happened
  if not ok then error(r, 0) end
  if r[1] == "done" then return table.unpack(r, 2, r.n) end
  if r[1] == "killed" then error(self:limit_error(r[2]), 0) end
  error(from_recipe(r[2]), 0)
end

function Box:run(fname, client, ...)
  local id, why = self.sb:spawn(fname, ...)
  if id == "killed" then error(self:limit_error(why), 0) end
  return self:drive(id, client)
end

-- load(text, chunkname) -> {manifest=, has_main=, returned=, compile_error=}
function Box:load(text, chunkname)
  return self:run("load", nil, text, chunkname)
end

-- policy{manifest=, force=}: what requests and files may do from now on.
function Box:policy(o)
  self.manifest = o.manifest
  self.force = o.force == true
  self.scopes = {}
  for _, s in ipairs(o.manifest.scopes or {}) do self.scopes[s] = true end
end

-- The fields of a client the recipe may see (dry_run: true when its
-- writes are recorded, not sent).
local function client_fields(c)
  return { location = c.location, company = c.company, app = c.app, base = c.base, kind = c.kind,
           dry_run = c.dry_run and true or nil }
end

-- main(params, client, location) -> the recipe's result (a copy).
function Box:main(params, client, location)
  local loc = location
  if type(location) == "table" then
    loc = {}
    for k, v in pairs(location) do
      if type(k) == "string" and (type(v) == "string" or type(v) == "number" or type(v) == "boolean") then loc[k] = v end
    end
  end
  return self:run("main", client, params, client and client_fields(client) or {}, loc, { capture = self.sink ~= nil })
end

function Box:close()
  for _, r in pairs(self.readers) do if r.file then r.file:close() end end
  self.readers = {}
  self.sb:close()
end

return M
