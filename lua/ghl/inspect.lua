-- Readable printing of Lua values for the REPL and `ghlua -e`: JSON-like
-- text (objects in braces with quoted keys, sorted; arrays in brackets;
-- strings JSON-quoted; cjson.null as null), on one line when it fits in
-- `width` columns, else indented. Long arrays are summarised: above `limit`
-- items only the first `head` are shown, then "… N more"; inspect.all(v)
-- (the REPL's :more) prints everything. Colour (ANSI) only when asked for;
-- inspect.print asks for it on a terminal unless NO_COLOR is set or TERM is
-- "dumb". Cycles print as <cycle>, nesting deeper than `depth` as {…}, and
-- a ghl.error as ghl.error<its one-line form>. Tables are walked raw (next,
-- rawget, rawlen), so printing never runs __index, __pairs or __len.
-- Nothing here raises for any value.
local E = require "ghl.error"
local cjson = require "cjson"

local M = { max_depth = 6, limit = 10, head = 5, width = 78 }

local NULL = cjson.null

-- SGR codes by kind of token.
local COLORS = {
  key = "34", str = "32", num = "33", bool = "35", null = "2", dim = "2", other = "36", err = "31",
}

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
                  ["\b"] = "\\b", ["\f"] = "\\f" }

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(ch)
    return ESCAPES[ch] or string.format("\\u%04x", ch:byte())
  end) .. '"'
end
M.quote = quote

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- Columns a rendered piece takes on screen (escapes and UTF-8 accounted).
local function visible_len(s)
  s = s:gsub("\27%[[%d;]*m", "")
  return utf8.len(s) or #s
end

local function isnull(v)
  return rawequal(v, NULL) or (type(v) == "userdata" and getmetatable(v) == nil and tostring(v) == "userdata: (nil)")
end

local render

-- An array, or an object: the rendered items, open and close brackets.
local function items_of(v, st, depth, indent)
  local n, count = rawlen(v), 0
  for _ in next, v do count = count + 1 end
  local pad = indent .. "  "
  local items = {}
  if (n > 0 and count == n) or (count == 0 and getmetatable(v) ~= nil) then
    local m = n
    if st.limit and n > st.limit then m, st.summarised = math.min(st.head, n), true end
    local scalars = true
    for i = 1, m do
      local x = rawget(v, i)
      if type(x) == "table" then scalars = false end
      items[i] = render(x, st, depth + 1, pad)
    end
    if m < n then items[#items + 1] = st.paint("dim", string.format("… %d more", n - m)) end
    return items, "[", "]", scalars
  end
  local keys = {}
  for k in next, v do keys[#keys + 1] = k end
  table.sort(keys, key_order)
  for i, k in ipairs(keys) do
    local kt = type(k) == "string" and quote(k) or "[" .. tostring(k) .. "]"
    items[i] = st.paint("key", kt) .. ": " .. render(rawget(v, k), st, depth + 1, pad)
  end
  return items, "{", "}"
end

function render(v, st, depth, indent)
  local tv = type(v)
  if tv == "string" then return st.paint("str", quote(v)) end
  if tv == "number" then   -- JSON has one number type: 3.0 prints as 3
    if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2^53 then
      return st.paint("num", string.format("%d", v))
    end
    return st.paint("num", tostring(v))
  end
  if tv == "boolean" then return st.paint("bool", tostring(v)) end
  if tv == "nil" then return st.paint("null", "nil") end
  if isnull(v) then return st.paint("null", "null") end
  if tv ~= "table" then
    local ok, s = pcall(tostring, v)
    return st.paint("other", ok and type(s) == "string" and s or tv)
  end
  if E.is(v) then
    local ok, s = pcall(tostring, v)
    return st.paint("err", "ghl.error<" .. (ok and type(s) == "string" and s or "?") .. ">")
  end
  if st.seen[v] then return st.paint("other", "<cycle>") end
  if depth > st.depth then return st.paint("dim", "{…}") end
  st.seen[v] = true
  local items, open, close, scalars = items_of(v, st, depth, indent)
  st.seen[v] = nil
  if #items == 0 then return open .. close end
  local oneline = true
  for _, it in ipairs(items) do
    if it:find("\n", 1, true) then oneline = false; break end
  end
  if oneline then
    local line = open .. table.concat(items, ", ") .. close
    if #indent + visible_len(line) <= st.width then return line end
  end
  local pad = indent .. "  "
  if scalars then
    -- scalars fill the width, several to a line
    local lines, cur, used = {}, {}, #pad
    for _, it in ipairs(items) do
      local w = visible_len(it) + 2
      if #cur > 0 and used + w > st.width then
        lines[#lines + 1] = table.concat(cur, ", ")
        cur, used = {}, #pad
      end
      cur[#cur + 1], used = it, used + w
    end
    lines[#lines + 1] = table.concat(cur, ", ")
    return open .. "\n" .. pad .. table.concat(lines, ",\n" .. pad) .. "\n" .. indent .. close
  end
  return open .. "\n" .. pad .. table.concat(items, ",\n" .. pad) .. "\n" .. indent .. close
end

local function state(opts)
  opts = opts or {}
  local color = opts.color
  local limit = opts.limit
  if limit == nil then limit = M.limit end
  return {
    seen = {}, depth = opts.depth or M.max_depth, limit = limit or nil,
    head = opts.head or M.head, width = opts.width or M.width, summarised = false,
    paint = color and function(kind, s) return "\27[" .. COLORS[kind] .. "m" .. s .. "\27[0m" end
      or function(_, s) return s end,
  }
end

-- render(v, {color=, limit= (false: never summarise), head=, depth=, width=})
-- -> text, whether an array was summarised.
function M.render(v, opts)
  local st = state(opts)
  return render(v, st, 1, ""), st.summarised
end

-- inspect(v [, opts]) -> text (no colour unless opts.color).
function M.inspect(v, opts)
  return (M.render(v, opts))
end

-- Whether printing to stdout should use colour.
function M.use_color()
  local nc = os.getenv("NO_COLOR")
  if nc and nc ~= "" then return false end
  if os.getenv("TERM") == "dumb" then return false end
  return require("ghl.sys").isatty(1) and true or false
end

local function print_with(opts, ...)
  opts.color = M.use_color()
  for i = 1, select("#", ...) do
    io.stdout:write(M.render((select(i, ...)), opts), "\n")
  end
  io.stdout:flush()
end

-- print(...) prints each value on its own line, arrays summarised.
function M.print(...)
  print_with({}, ...)
end

-- all(...) prints each value in full: no summary, nesting to 100 levels.
function M.all(...)
  print_with({ limit = false, depth = 100 }, ...)
end

return setmetatable(M, { __call = function(_, v, opts) return M.inspect(v, opts) end })
