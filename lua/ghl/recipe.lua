-- ghl.recipe: loading recipes, scripts people share, and running them
-- safely. A recipe is a Lua file that calls recipe{...} with its manifest
-- and returns its main function:
--   recipe{ name = "tag_vips", description = "...", scopes = {"contacts.write"},
--           writes = true, params = { tag = {type = "string", required = true,
--           default = nil, help = "..."} } }
--   return function(params, client, location) ... end
-- Parameter types: string, number, integer, boolean, list (comma
-- separated), input_file (a file that must exist; "file" is the same) and
-- output_file (a file the recipe writes; one that exists is replaced only
-- with overwrite = true in the manifest or --force). writes defaults to
-- true.
--   recipe.load(path, {trust=, max_memory=, timeout=, output=})
--       -> {manifest, main, path, trusted, box}
--   recipe.params(manifest, raw, {force=, sandboxed=}) -> typed params (raw:
--       name -> string)
--   recipe.missing_scopes(manifest, granted) -> {scope, ...}
--   recipe.help(manifest, path) -> text for `ghlua run RECIPE --help`
--   recipe.plan_lines(plan) -> the dry-run plan as text lines, secrets redacted
--   recipe.mentions_recipe(text) -> whether Lua source could call recipe{}
--   recipe.script_guard(path) -> the global `recipe` for `ghlua FILE`
-- Unless trust, the recipe runs in a Lua state of its own (ghl.sandbox:
-- box is its handle), where its client, ghl.csv and require ask the host,
-- which checks every request against the manifest (API host, writes,
-- scopes) and opens only the files its file parameters name. With trust it
-- runs in this state with the whole library. A malformed manifest or bad
-- parameters raise kind "usage".
local E = require "ghl.error"

local M = {}

M.TYPES = { string = true, number = true, integer = true, boolean = true, list = true, file = true,
  input_file = true, output_file = true }

local function usage(msg, hint)
  E.raise { kind = "usage", message = msg, hint = hint }
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
            "types: string, number, integer, boolean, list, input_file, output_file")
    end
    if t == "file" then t = "input_file" end
    if p.help ~= nil and type(p.help) ~= "string" then usage(where .. ": params." .. name .. ".help must be a string") end
    local d = p.default
    if d ~= nil and type(d) ~= "string" and type(d) ~= "number" and type(d) ~= "boolean" then
      if type(d) ~= "table" then usage(where .. ": params." .. name .. ".default must be a plain value") end
      for _, x in ipairs(d) do
        if type(x) ~= "string" then usage(where .. ": params." .. name .. ".default must be a list of strings") end
      end
    end
    if t:find("_file$") and d ~= nil and type(d) ~= "string" then
      usage(where .. ": params." .. name .. ".default must be a file name")
    end
    out.params[name] = { type = t, required = p.required == true, default = d, help = p.help,
                         overwrite = t == "output_file" and p.overwrite == true or nil }
    out.order[#out.order + 1] = name
  end
  table.sort(out.order)
  return out
end

-- ---- Loading ----

-- Does the Lua source name the global `recipe` anywhere outside comments
-- and strings (not as a field, t.recipe, t:recipe or {recipe = ...}, nor
-- assigned to)? A file that never does cannot call recipe{...} (short of
-- spelling it _ENV["rec".."ipe"]), so it is a plain script, told apart
-- without running a line of it.
function M.mentions_recipe(text)
  local i, n, prev = 1, #text, nil
  if text:sub(1, 1) == "#" then i = (text:find("\n", 1, true) or n) + 1 end   -- a #! line
  while i <= n do
    local s = text:find("[%-%[\"'%a_%.:%d]", i)
    if not s then return false end
    if s > i and text:sub(i, s - 1):find("[^%s]") then prev = "op" end   -- an operator in between
    local c = text:sub(s, s)
    if c == "-" then
      if text:sub(s + 1, s + 1) == "-" then
        local eq = text:match("^%[(=*)%[", s + 2)
        local _, e
        if eq then _, e = text:find("]" .. eq .. "]", s + 4 + #eq, true)
        else e = text:find("\n", s + 2, true) end
        i = (e or n) + 1
      else
        prev, i = "op", s + 1
      end
    elseif c == "[" then
      local eq = text:match("^%[(=*)%[", s)
      if eq then
        local _, e = text:find("]" .. eq .. "]", s + 2 + #eq, true)
        prev, i = "string", (e or n) + 1
      else
        prev, i = "op", s + 1
      end
    elseif c == '"' or c == "'" then
      local j = s + 1
      while j <= n do
        local d = text:sub(j, j)
        if d == "\\" then j = j + 2
        elseif d == c or d == "\n" then break
        else j = j + 1 end
      end
      prev, i = "string", j + 1
    elseif c == "." or c == ":" then
      local _, e = text:find("^[%.:]+", s)
      prev, i = (e == s) and c or "op", e + 1   -- "..", "...", "::" are not field access
    elseif c:match("%d") then
      local _, e = text:find("^[%w_%.]+", s)   -- a number, 0x1p4 and 1.5e3 included
      prev, i = "number", e + 1
    else
      local _, e = text:find("^[%a_][%w_]*", s)
      local word = text:sub(s, e)
      if word == "recipe" and prev ~= "." and prev ~= ":" and not text:find("^%s*=[^=]", e + 1) then
        return true
      end
      prev, i = word, e + 1
    end
  end
  return false
end

-- script_guard(path) -> the global `recipe` of a file run as a script
-- (`ghlua FILE`): a recipe's first line then says how to run it, in one
-- line, instead of failing on a nil global.
function M.script_guard(path)
  return function()
    usage(("%s is a recipe, not a script"):format(path),
          "run it with: ghlua run " .. require("ghl.util").shell_quote(path) .. " (--help shows its parameters)")
  end
end

local function not_a_recipe(path, why)
  usage(("%s is not a recipe: %s"):format(path, why),
        "run it as a script: ghlua " .. require("ghl.util").shell_quote(path))
end

local function check_loaded(path, has_manifest, has_main)
  if not has_manifest then
    not_a_recipe(path, "it does not call recipe{name=, ...}")
  end
  if not has_main then
    usage(path .. ": the recipe must return its main function (return function(params, client) ... end)")
  end
end

local function read_file(path)
  local text, err = require("ghl.util").slurp(path)
  if not text then E.raise { kind = "usage", message = "cannot read the recipe " .. path .. ": " .. tostring(err) } end
  return text
end

-- load(path, {trust=, max_memory=, timeout=, output=}) -> {manifest, main,
-- path, trusted, box}; main(params, client, location).
function M.load(path, o)
  o = o or {}
  local text = read_file(path)
  if not M.mentions_recipe(text) then not_a_recipe(path, "it never calls recipe{...}") end
  local dir = path:match("^(.*)/[^/]*$") or "."
  if o.trust then
    local manifest
    local env = setmetatable({ ghl = require "ghl" }, { __index = _G })
    env.recipe = function(m)
      if manifest then usage(path .. ": recipe{...} is called twice") end
      manifest = check_manifest(m, path)
      return manifest
    end
    local chunk, err = load(text, "@" .. path, "t", env)
    if not chunk then E.raise { kind = "usage", message = "the recipe does not compile: " .. tostring(err) } end
    local main = chunk()
    check_loaded(path, manifest ~= nil, type(main) == "function")
    return { manifest = manifest, main = main, path = path, trusted = true, env = env }
  end
  local box = require("ghl.sandbox").new { dir = dir, max_memory = o.max_memory, timeout = o.timeout,
                                           output = o.output }
  local info = box:load(text, "@" .. path)
  if info.compile_error then
    E.raise { kind = "usage", message = "the recipe does not compile: " .. tostring(info.compile_error) }
  end
  check_loaded(path, info.manifest ~= nil, info.has_main)
  local manifest = check_manifest(info.manifest, path)
  return { manifest = manifest, path = path, trusted = false, box = box,
           main = function(params, client, location) return box:main(params, client, location) end }
end

-- ---- Parameters ----

local function convert(name, p, v, sandboxed)
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
  if t == "input_file" then
    local f = io.open(v, "rb")
    if not f and sandboxed and require("ghl.sys").lstat(v) == "link" then
      E.raise { kind = "sandbox", message = ("--param %s: %s is a symbolic link; a recipe reads only regular files"):format(name, v),
        hint = "name the file itself, or run with --trust if you trust the recipe's author" }
    end
    if not f then usage(("--param %s: no readable file '%s'"):format(name, v)) end
    f:close()
    return v
  end
  return v
end

-- An output file that exists is replaced only when the manifest or the
-- user says so.
local function check_output(name, p, v, force)
  if p.type ~= "output_file" or type(v) ~= "string" or p.overwrite or force then return end
  local f = io.open(v, "rb")
  if f then
    f:close()
    E.raise { kind = "exists", message = ("%s exists, and the recipe would overwrite it"):format(v),
      hint = ("pass --force to let it, or name another file with --param %s=FILE"):format(name) }
  end
end

-- params(manifest, raw, {force=, sandboxed=}) -> typed params; raises kind "usage"
-- (and kind "exists" for an output file that exists, unless force).
function M.params(m, raw, o)
  local out = {}
  for name, v in pairs(raw or {}) do
    local p = m.params[name]
    if not p then
      usage(("%s has no parameter '%s'"):format(m.name, name),
            #m.order > 0 and ("its parameters: " .. table.concat(m.order, ", ")) or "it takes no parameters")
    end
    out[name] = convert(name, p, v, o and o.sandboxed)
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
    check_output(name, p, out[name], o and o.force)
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
    .. " [--location ID | --all-locations] [--dry-run] [--yes] [--force] [--trust]"
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
      out[k] = require("ghl.util").redact(x)
    else
      out[k] = redact(x, depth + 1)
    end
  end
  return setmetatable(out, getmetatable(v))
end
M.redact = function(v) return redact(v, 0) end

-- plan_lines(plan) -> lines of text, one write per line and its body.
function M.plan_lines(plan)
  local json = require "ghl.json"
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
      if type(body) == "table" then body = json.encode(M.redact(body)) or "?" end
      lines[#lines + 1] = "       " .. tostring(body)
    end
  end
  for _, f in ipairs(plan.files or {}) do
    lines[#lines + 1] = ("     file   %s: %d row%s, not written"):format(f.path, f.rows, f.rows == 1 and "" or "s")
  end
  return lines
end

return M
