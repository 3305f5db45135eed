-- ghl.recipe: loading recipes, scripts people share, and running them
-- safely. A recipe is a Lua file that calls recipe{...} with its manifest
-- and returns its main function:
--   recipe{ name = "tag_vips", description = "...", scopes = {"contacts.write"},
--           writes = true, params = { tag = {type = "string", required = true,
--           default = nil, help = "..."} } }
--   return function(params, client, location) ... end
-- Parameter types: string, number, integer, boolean, list (comma
-- separated), file (a path that must exist). writes defaults to true.
--   recipe.load(path, {trust = bool}) -> {manifest, main, path, trusted}
--   recipe.params(manifest, raw) -> typed params (raw: name -> string)
--   recipe.missing_scopes(manifest, granted) -> {scope, ...}
--   recipe.help(manifest, path) -> text for `ghlua run RECIPE --help`
--   recipe.client(client) -> the view of a client a sandboxed recipe gets
--   recipe.plan_lines(plan) -> the dry-run plan as text lines, secrets redacted
-- The sandbox (unless trust): the recipe's globals are the safe base
-- functions, string, table, math, utf8, coroutine, os.time/clock/date/
-- difftime, print, and a `ghl` holding the resource modules, csv (files
-- under the working directory only), json, error, try, parallel and
-- inspect, all read-only. There is no io, os.execute, os.getenv, io.popen,
-- package (so no package.loadlib), debug, dofile, loadfile or
-- collectgarbage; load takes text chunks only; require gives the ghl
-- modules above and Lua files next to the recipe (sandboxed too), and
-- refuses C modules and anything else. The client a recipe gets sends
-- only paths on its own API host and never shows its token. Breaking a
-- rule raises a ghl.error of kind "sandbox" naming --trust. A malformed
-- manifest or bad parameters raise kind "usage".
local E = require "ghl.error"

local M = {}

M.TYPES = { string = true, number = true, integer = true, boolean = true, list = true, file = true }

local function usage(msg, hint)
  E.raise { kind = "usage", message = msg, hint = hint }
end

local function sandbox_error(msg)
  E.raise { kind = "sandbox", message = msg,
            hint = "recipes run sandboxed; run it with --trust if you trust its author" }
end

-- ---- The manifest ----

local function check_manifest(m, path)
  local where = path or "recipe"
  if type(m) ~= "table" then usage(where .. ": recipe{...} takes a table") end
  if type(m.name) ~= "string" or m.name == "" then usage(where .. ": the manifest needs a name") end
  if m.description ~= nil and type(m.description) ~= "string" then usage(where .. ": description must be a string") end
  if m.scopes ~= nil and type(m.scopes) ~= "table" then usage(where .. ": scopes must be a list") end
  for _, s in ipairs(m.scopes or {}) do
    if type(s) ~= "string" then usage(where .. ": scopes must be strings") end
  end
  if m.writes ~= nil and type(m.writes) ~= "boolean" then usage(where .. ": writes must be true or false") end
  if m.params ~= nil and type(m.params) ~= "table" then usage(where .. ": params must be a table") end
  local out = { name = m.name, description = m.description or "", scopes = {}, writes = m.writes ~= false,
                params = {}, order = {} }
  for i, s in ipairs(m.scopes or {}) do out.scopes[i] = s end
  for name, p in pairs(m.params or {}) do
    if type(name) ~= "string" or not name:match("^[%a_][%w_%-]*$") then
      usage(where .. ": parameter names must be identifiers, got " .. tostring(name))
    end
    if type(p) ~= "table" then usage(where .. ": params." .. name .. " must be a table {type=, ...}") end
    local t = p.type or "string"
    if not M.TYPES[t] then
      usage(where .. ": params." .. name .. " has an unknown type '" .. tostring(t) .. "'",
            "types: string, number, integer, boolean, list, file")
    end
    out.params[name] = { type = t, required = p.required == true, default = p.default, help = p.help }
    out.order[#out.order + 1] = name
  end
  table.sort(out.order)
  return out
end

-- ---- The sandbox ----

local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k) error(("%s is read-only (cannot set %s)"):format(name, tostring(k)), 2) end,
    __pairs = function() return next, t, nil end,
    __metatable = false,
  })
end

local function copy_lib(t, drop)
  local c = {}
  for k, v in pairs(t) do
    if not (drop and drop[k]) then c[k] = v end
  end
  return c
end

local RESOURCE_NAMES = { "contacts", "custom_fields", "custom_values", "tags", "opportunities", "users",
  "locations", "conversations", "calendars" }

-- What a sandboxed recipe must not reach: functions that read the token
-- store for themselves.
local DENY = { locations = { installed = true, company_row = true } }

-- The resource module `name` as a sandboxed recipe sees it.
local resources = {}
local function resource(name)
  if not resources[name] then
    local deny = DENY[name] or {}
    local t = {}
    for k, v in pairs(require("ghl." .. name)) do
      if not deny[k] then t[k] = v end
    end
    resources[name] = readonly(t, "ghl." .. name)
  end
  return resources[name]
end

local CLIENT_METHODS = { "get", "post", "put", "patch", "delete", "request", "paginate", "batch", "rate", "prepare" }
local CLIENT_FIELDS = { location = true, company = true, app = true, base = true, kind = true }

local function check_path(path)
  if type(path) ~= "string" or not path:match("^/[^/\\]") and path ~= "/" then
    sandbox_error("a recipe may only send paths on the API host, like '/contacts/', not " .. string.format("%q", tostring(path)))
  end
  return path
end

-- client(real) -> the client a sandboxed recipe gets: the request methods
-- and the public fields, no token, and only paths on the API host.
function M.client(real)
  local view = {}
  local methods = {}
  for _, name in ipairs(CLIENT_METHODS) do
    methods[name] = function(self, a, b, ...)
      if self ~= view then error("call client methods with ':' (client:" .. name .. "(...))", 2) end
      if name == "batch" then
        for _, r in ipairs(type(a) == "table" and a or {}) do check_path(r.path or r[2]) end
      elseif name == "request" or name == "prepare" then
        check_path(b)
      elseif name ~= "rate" then
        check_path(a)
      end
      return real[name](real, a, b, ...)
    end
  end
  return setmetatable(view, {
    __index = function(t, k)
      if methods[k] then return methods[k] end
      if CLIENT_FIELDS[k] then return real[k] end
      if require("ghl.client").RESOURCES[k] then
        local v = require("ghl.resource").bind(resource(k), t)
        rawset(t, k, v)
        return v
      end
      return nil
    end,
    __newindex = function(_, k) error("the client is read-only (cannot set " .. tostring(k) .. ")", 2) end,
    __tostring = function() return "ghl.client (" .. tostring(real.location or real.company) .. ")" end,
    __metatable = false,
  })
end

-- The ghl a sandboxed recipe sees.
local function sandbox_ghl(root)
  local ghl = require "ghl"
  local t = { _VERSION = ghl._VERSION, try = ghl.try, parallel = ghl.parallel,
    json = readonly(require "cjson.safe", "ghl.json"), error = readonly(E, "ghl.error"),
    inspect = function(v, o) return require("ghl.inspect")(v, o) end,
    csv = readonly(require("ghl.csv").sandbox(root), "ghl.csv") }
  for _, name in ipairs(RESOURCE_NAMES) do t[name] = resource(name) end
  return readonly(t, "ghl")
end

local SAFE = { "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
  "rawlen", "rawset", "select", "tonumber", "tostring", "type", "xpcall", "_VERSION", "setmetatable" }

-- env(dir, root, recipe_fn) -> a fresh sandbox environment.
local function sandbox_env(dir, root, recipe_fn)
  local env = {}
  for _, k in ipairs(SAFE) do env[k] = _G[k] end
  env.string = copy_lib(string, { dump = true })
  env.table = copy_lib(table)
  env.math = copy_lib(math)
  env.utf8 = copy_lib(utf8)
  env.coroutine = copy_lib(coroutine)
  env.os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
  env.getmetatable = function(v)
    if type(v) == "string" then return nil end
    return getmetatable(v)
  end
  env.load = function(chunk, name, _, e)
    return load(chunk, name, "t", e or env)
  end
  env.recipe = recipe_fn
  env.ghl = sandbox_ghl(root)
  env._G = env
  local loaded = {}
  env.require = function(name)
    if type(name) ~= "string" then error("require: module name must be a string", 2) end
    if loaded[name] ~= nil then return loaded[name] end
    if name == "ghl" then return env.ghl end
    local short = name:match("^ghl%.([%w_]+)$")
    if short and type(env.ghl[short]) == "table" then return env.ghl[short] end
    if name:match("^[%w_]+[%w_.]*$") then
      local path = package.searchpath(name, dir .. "/?.lua")
      if path then
        local f = io.open(path, "rb")
        local text = f and f:read("a")
        if f then f:close() end
        local chunk, err = load(text or "", "@" .. path, "t", env)
        if not chunk then error(err, 2) end
        local v = chunk(name)
        if v == nil then v = true end
        loaded[name] = v
        return v
      end
    end
    sandbox_error(("require '%s' is not allowed in a recipe: only the ghl modules and Lua files next to the recipe are"):format(name))
  end
  return env
end

-- ---- Loading ----

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then E.raise { kind = "usage", message = "cannot read the recipe " .. path .. ": " .. tostring(err) } end
  local text = f:read("a")
  f:close()
  return text
end

-- load(path, {trust=}) -> {manifest, main, path, trusted}.
function M.load(path, o)
  o = o or {}
  local text = read_file(path)
  local manifest
  local function recipe_fn(m)
    if manifest then usage(path .. ": recipe{...} is called twice") end
    manifest = check_manifest(m, path)
    return manifest
  end
  local dir = path:match("^(.*)/[^/]*$") or "."
  local env
  if o.trust then
    env = setmetatable({ recipe = recipe_fn, ghl = require "ghl" }, { __index = _G })
  else
    env = sandbox_env(dir, o.root or assert(require("ghl._csv").getcwd()), recipe_fn)
  end
  local chunk, err = load(text, "@" .. path, "t", env)
  if not chunk then E.raise { kind = "usage", message = "the recipe does not compile: " .. tostring(err) } end
  local main = chunk()
  if not manifest then
    usage(path .. " is not a recipe: it does not call recipe{name=, ...}",
          "a recipe calls recipe{...} with its manifest, then returns its main function")
  end
  if type(main) ~= "function" then
    usage(path .. ": the recipe must return its main function (return function(params, client) ... end)")
  end
  return { manifest = manifest, main = main, path = path, trusted = o.trust == true, env = env }
end

-- ---- Parameters ----

local function convert(name, p, v)
  local t = p.type
  if t == "string" then return v end
  if t == "number" then
    local n = tonumber(v)
    if not n then usage(("--param %s needs a number, got '%s'"):format(name, v)) end
    return n
  end
  if t == "integer" then
    local n = math.tointeger(tonumber(v))
    if not n then usage(("--param %s needs an integer, got '%s'"):format(name, v)) end
    return n
  end
  if t == "boolean" then
    local l = v:lower()
    if l == "true" or l == "yes" or l == "1" or l == "on" then return true end
    if l == "false" or l == "no" or l == "0" or l == "off" then return false end
    usage(("--param %s needs true or false, got '%s'"):format(name, v))
  end
  if t == "list" then
    local out = {}
    for item in v:gmatch("[^,]+") do
      item = item:gsub("^%s+", ""):gsub("%s+$", "")
      if item ~= "" then out[#out + 1] = item end
    end
    return out
  end
  if t == "file" then
    local f = io.open(v, "rb")
    if not f then usage(("--param %s: no readable file '%s'"):format(name, v)) end
    f:close()
    return v
  end
  return v
end

-- params(manifest, raw) -> typed params; raises kind "usage".
function M.params(m, raw)
  local out = {}
  for name, v in pairs(raw or {}) do
    local p = m.params[name]
    if not p then
      usage(("%s has no parameter '%s'"):format(m.name, name),
            #m.order > 0 and ("its parameters: " .. table.concat(m.order, ", ")) or "it takes no parameters")
    end
    out[name] = convert(name, p, v)
  end
  for _, name in ipairs(m.order) do
    local p = m.params[name]
    if out[name] == nil then
      if p.default ~= nil then
        out[name] = p.default
      elseif p.required then
        usage(("%s needs --param %s=VALUE%s"):format(m.name, name, p.help and (" (" .. p.help .. ")") or ""))
      end
    end
  end
  return out
end

-- ---- Scopes ----

-- missing_scopes(manifest, granted) -> the manifest's scopes not granted
-- (granted: a list or a space-separated string).
function M.missing_scopes(m, granted)
  local have = {}
  if type(granted) == "string" then
    for s in granted:gmatch("%S+") do have[s] = true end
  else
    for _, s in ipairs(granted or {}) do have[s] = true end
  end
  local missing = {}
  for _, s in ipairs(m.scopes) do
    if not have[s] then missing[#missing + 1] = s end
  end
  return missing
end

-- ---- Help ----

function M.help(m, path)
  local lines = { m.name .. (m.description ~= "" and (": " .. m.description) or ""), "" }
  local args = {}
  for _, name in ipairs(m.order) do
    local p = m.params[name]
    args[#args + 1] = (p.required and p.default == nil) and ("--param " .. name .. "=" .. p.type:upper())
      or ("[--param " .. name .. "=" .. p.type:upper() .. "]")
  end
  lines[#lines + 1] = "usage: ghlua run " .. (path or "RECIPE") .. (#args > 0 and (" " .. table.concat(args, " ")) or "")
    .. " [--location ID | --all-locations] [--dry-run] [--yes] [--trust]"
  lines[#lines + 1] = ""
  if #m.order > 0 then
    lines[#lines + 1] = "Parameters:"
    for _, name in ipairs(m.order) do
      local p = m.params[name]
      local what = p.type .. (p.required and p.default == nil and ", required" or "")
      if p.default ~= nil then
        local d = p.default
        if type(d) == "table" then d = #d > 0 and table.concat(d, ",") or "empty" end
        what = what .. ", default " .. tostring(d)
      end
      lines[#lines + 1] = ("  %-18s %s(%s)"):format(name, p.help and (p.help .. " ") or "", what)
    end
  else
    lines[#lines + 1] = "Parameters: none"
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Scopes: " .. (#m.scopes > 0 and table.concat(m.scopes, " ") or "none declared")
  lines[#lines + 1] = "Writes: " .. (m.writes and "yes (shows the plan and asks first; --yes skips the question, --dry-run only shows the plan)"
    or "no (reads only)")
  return table.concat(lines, "\n") .. "\n"
end

-- ---- The plan ----

local SECRET_KEY = { "token", "secret", "password", "passwd", "apikey", "api_key", "authorization", "credential" }

local function is_secret_key(k)
  if type(k) ~= "string" then return false end
  local l = k:lower()
  for _, s in ipairs(SECRET_KEY) do
    if l:find(s, 1, true) then return true end
  end
  return false
end

-- A copy of v with the values under secret-looking keys redacted.
local function redact(v, depth)
  if type(v) ~= "table" or depth > 20 then return v end
  local out = {}
  for k, x in pairs(v) do
    if is_secret_key(k) and type(x) == "string" then
      out[k] = require("ghl.http").redact(x)
    else
      out[k] = redact(x, depth + 1)
    end
  end
  return setmetatable(out, getmetatable(v))
end
M.redact = function(v) return redact(v, 0) end

-- plan_lines(plan) -> lines of text, one write per line and its body.
function M.plan_lines(plan)
  local cjson = require "cjson.safe"
  local lines = {}
  for i, w in ipairs(plan) do
    local url = w.path
    if w.query and next(w.query) then
      local q = {}
      for k, v in pairs(M.redact(w.query)) do q[#q + 1] = tostring(k) .. "=" .. tostring(v) end
      table.sort(q)
      url = url .. "?" .. table.concat(q, "&")
    end
    lines[#lines + 1] = ("%3d. %-6s %s%s"):format(i, w.method, url,
      w.location and ("   (location " .. w.location .. ")") or "")
    if w.body ~= nil then
      local body = w.body
      if type(body) == "table" then body = (cjson.encode(M.redact(body)) or "?"):gsub("\\/", "/") end
      lines[#lines + 1] = "       " .. tostring(body)
    end
  end
  return lines
end

return M
