-- Command-line flag parsing shared by every `ghlua COMMAND`, and the flag
-- declarations that help, completion and the man page read (ghl.cli).
-- A spec maps flag names (no dashes) to a kind, "string", "number", "flag"
-- or "list" (a repeatable string), or to a declaration table:
--   { "string", short = "q", value = "K=V", complete = "app", desc = "...",
--     long = false }
-- short: a one-letter alias (-q VALUE); value: the placeholder shown in
-- help; complete: what completion offers for the value (see
-- ghl.cli.completion: "app", "scope", "file", a list of words, ...);
-- desc: a one-line description (help options lists, completion menus);
-- long = false: the flag has only its short form; optional = V: the value
-- may be left out (last, or before another flag), and is then V. Accepts
-- `--name value`, `--name=value` and `-q value`; `--` ends flags. Bad flags raise a
-- ghl.error of kind "usage" (exit status 2) naming the flag (and the
-- nearest known one) and the usage line.
local E = require "ghl.error"

local M = {}

local function usage(msg, line)
  E.raise { kind = "usage", message = msg .. (line and ("; usage: " .. line) or "") }
end

-- decl(spec, name) -> the normalized declaration of flag `name`:
-- {name=, kind=, short=, value=, complete=, desc=, long=}, or nil.
local function decl(spec, name)
  local d = spec[name]
  if d == nil then return nil end
  if type(d) == "string" then return { name = name, kind = d, long = true } end
  local t = { name = name, kind = d[1] or d.kind, long = d.long ~= false }
  for k, v in pairs(d) do if type(k) == "string" and k ~= "kind" and k ~= "long" then t[k] = v end end
  return t
end

-- list(spec) -> every flag's declaration, sorted: short-only flags by
-- letter first, then long names.
function M.list(spec)
  local out = {}
  for name in pairs(spec or {}) do out[#out + 1] = decl(spec, name) end
  table.sort(out, function(a, b)
    if a.long ~= b.long then return not a.long end
    return a.name < b.name
  end)
  return out
end

-- The flag a token names, or nil: (declaration, inline value or nil).
-- Tokens that are not flags ("-", "--", negative numbers) give nil, false.
function M.lookup(spec, a)
  if a:sub(1, 2) == "--" and #a > 2 then
    local name, value = a:sub(3):match("^([^=]+)=(.*)$")
    name = name or a:sub(3)
    local d = decl(spec, name)
    if d and d.long then return d, value end
    return nil, true
  elseif a:sub(1, 1) == "-" and #a > 1 and not tonumber(a) then
    if #a == 2 then
      for name in pairs(spec) do
        local d = decl(spec, name)
        if d.short == a:sub(2) then return d, nil end
      end
    end
    return nil, true
  end
  return nil, false
end

-- The printed form of a flag: "--name" or "-q".
function M.display(d)
  return d.long and ("--" .. d.name) or ("-" .. d.short)
end

-- Does flag d, written without `=value` at argv[i], take argv[i + 1] as
-- its value?
local function takes_next(d, argv, i)
  if d.kind == "flag" then return false end
  if d.optional == nil then return true end
  local nxt = argv[i + 1]
  return nxt ~= nil and (nxt:sub(1, 1) ~= "-" or nxt == "-")
end
M.takes_next = takes_next

-- The known long flag nearest to an unknown one, or nil.
local function nearest(spec, name)
  local distance = require("ghl.scopes").distance
  local best, best_d
  for _, d in ipairs(M.list(spec)) do
    if d.long then
      local limit = #name < 5 and 1 or 2
      local n = distance(name, d.name, limit)
      if d.name:sub(1, #name) == name and #name >= 3 then n = math.min(n, 1) end
      if n <= limit and (not best_d or n < best_d) then best, best_d = d.name, n end
    end
  end
  return best
end

-- parse(argv, spec, usage_line) -> opts, positional
function M.parse(argv, spec, line)
  local opts, rest, i = {}, {}, 1
  while i <= #argv do
    local a = argv[i]
    local d, value = M.lookup(spec, a)
    if a == "--" then
      table.move(argv, i + 1, #argv, #rest + 1, rest)
      break
    elseif d then
      local name, shown = d.name, M.display(d)
      if d.kind == "flag" then
        if value then usage(string.format("option '%s' takes no value", shown), line) end
        opts[name] = true
      else
        if not value and not takes_next(d, argv, i) and d.optional ~= nil then
          value = d.optional
        elseif not value then
          i = i + 1
          value = argv[i]
          if value == nil then usage(string.format("option '%s' needs a value", shown), line) end
        end
        if d.kind == "number" then
          local n = tonumber(value)
          if not n then usage(string.format("option '%s' needs a number, got '%s'", shown, value), line) end
          value = n
        end
        if d.kind == "list" then
          opts[name] = opts[name] or {}
          table.insert(opts[name], value)
        else
          opts[name] = value
        end
      end
    elseif value then
      local long = a:match("^%-%-([^=]+)")
      local near = long and nearest(spec, long)
      usage(string.format("unknown option '%s'%s", long and ("--" .. long) or a,
        near and (" (did you mean --" .. near .. "?)") or ""), line)
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

-- scan(argv, spec) -> the arguments in flag position, as {index, decl or
-- nil, token}: what parse would read as flags (unknown ones included, taken
-- as taking no value), up to `--`. Values are skipped, not listed.
function M.scan(argv, spec)
  local out, i = {}, 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then break end
    local d, value = M.lookup(spec, a)
    if d or value then
      out[#out + 1] = { i, d, a }
      if d and value == nil and takes_next(d, argv, i) then i = i + 1 end
    end
    i = i + 1
  end
  return out
end

M.usage = usage

-- Declarations that many commands share: which stored app, location and
-- company a flag names (completed from the token store).
M.APP = { "string", value = "NAME", complete = "app" }
M.LOCATION = { "string", value = "ID", complete = "location" }
M.COMPANY = { "string", value = "ID", complete = "company" }
M.USER_TYPE = { "string", value = "T", complete = { "Location", "Company" } }

return M
