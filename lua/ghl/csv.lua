-- ghl.csv: CSV files for recipes, over libcsv (the native ghl._csv).
--   for row, line in csv.read(path_or_text, {header = true, delim = ",",
--       quote = '"', ragged = false, text = false}) do ... end
--     rows are tables keyed by the header's names (header = false: arrays
--     of strings); line is the physical line the record starts on. The
--     argument is CSV text when it holds a newline or opts.text is set,
--     else a file path. A UTF-8 byte order mark at the start is dropped;
--     blank lines are skipped. Quoted fields may hold delimiters, doubled
--     quotes and newlines (RFC 4180). Leaving the loop early closes the
--     file.
--   csv.parse(text, opts) -> array of rows (the same rows, all at once)
--   csv.write(path, rows, {columns = {...}, header = true, delim = ",",
--       eol = "\n"}) -> number of rows written
--   csv.encode(rows, opts) -> the text csv.write would write
--     rows are arrays, or tables keyed by column name (columns: the
--     columns in order; by default the first row's keys, sorted). Values:
--     strings as they are, integral numbers without ".0", booleans as
--     true/false, nil and JSON null as empty, tables as JSON.
--   A recipe run sandboxed gets these through the host (ghl.sandbox), which
--   opens only the files its parameters name and passes opts.file.
-- A malformed record, or with header a record whose number of fields is
-- not the header's (unless ragged), raises a ghl.error of kind "csv" whose
-- message starts "line N:" and whose field line is N. A file that cannot
-- be opened raises kind "io".
local native = require "ghl._csv"
local E = require "ghl.error"
local json = require "ghl.json"

local M = {}

M.CHUNK = 65536

local function fail(t)
  t.kind = t.kind or "csv"
  E.raise(t)
end

-- A source of chunks: the text itself, or a file read in pieces.
local function source(arg, o)
  if type(arg) ~= "string" then error("csv.read: expected a path or CSV text, got " .. type(arg), 3) end
  if o.text or arg:find("[\r\n]") then
    local done = false
    return function()
      if done then return nil end
      done = true
      return arg
    end, function() end, "text"
  end
  if o.file then   -- a file the caller opened (ghl.sandbox); the caller closes it
    local f = o.file
    return function() return f:read(M.CHUNK) end, function() end, o.name or arg
  end
  local f, err = io.open(arg, "rb")
  if not f then fail { kind = "io", message = "cannot open " .. arg .. ": " .. tostring(err) } end
  return function() return f:read(M.CHUNK) end, function() f:close() end, arg
end

-- read(path_or_text, opts) -> iterator of row, line.
function M.read(arg, o)
  o = o or {}
  local header = o.header ~= false
  local next_chunk, close, name = source(arg, o)
  local p = native.parser { delim = o.delim, quote = o.quote, strict = o.strict ~= false }
  local rows, lines, i = {}, {}, 1
  local pending_err, finished = nil, false
  local columns
  local first = true   -- the first chunk: a UTF-8 byte order mark is dropped from it

  local stopped = false
  local function stop()
    if stopped then return end
    stopped = true
    close()
    p:close()
  end

  local function refill()
    while i > #rows and not finished and not pending_err do
      local chunk = next_chunk()
      local r, l, err
      if chunk and first then
        first = false
        chunk = chunk:gsub("^\239\187\191", "")
      end
      if chunk then r, l, err = p:feed(chunk) else r, l, err = p:finish(); finished = true end
      rows, lines, i = r, l, 1
      if err then
        err.file = name ~= "text" and name or nil
        if err.file then err.message = err.file .. ": " .. err.message end
        pending_err = err
      end
    end
  end

  local function nxt()
    refill()
    if i > #rows then
      stop()
      if pending_err then error(pending_err, 0) end
      return nil
    end
    local rec, line = rows[i], lines[i]
    i = i + 1
    if not header then return rec, line end
    if not columns then
      columns = rec
      return nxt()
    end
    if #rec ~= #columns and not o.ragged then
      stop()
      fail { line = line, message = ("%sline %d: %d field%s, but the header has %d"):format(
        name ~= "text" and (name .. ": ") or "", line, #rec, #rec == 1 and "" or "s", #columns),
        hint = { lua = "quote fields that contain the delimiter, or pass ragged = true",
                 cli = "quote the fields that contain the delimiter" } }
    end
    local t = {}
    for k, col in ipairs(columns) do t[col] = rec[k] end
    return t, line
  end
  -- the fourth value closes the file when a for loop is left early
  return nxt, nil, nil, setmetatable({}, { __close = stop })
end

-- parse(text, opts) -> array of rows.
function M.parse(text, o)
  o = o or {}
  local out = {}
  local oo = {}
  for k, v in pairs(o) do oo[k] = v end
  oo.text = true
  for row in M.read(text, oo) do out[#out + 1] = row end
  return out
end

-- ---- Writing ----

local function cell(v)
  if v == nil or v == json.null then return nil end
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
      return string.format("%d", math.tointeger(v))
    end
    return tostring(v)
  end
  if t == "boolean" then return tostring(v) end
  if t == "table" then return json.encode(v) or tostring(v) end
  return tostring(v)
end

local function is_array(t)
  return type(t) == "table" and (#t > 0 or next(t) == nil)
end

-- The lines of rows, header first.
local function lines_of(rows, o)
  if type(rows) ~= "table" then error("csv.write: rows must be a list", 3) end
  local delim, quote = o.delim or ",", o.quote or '"'
  local columns = o.columns
  if not columns and rows[1] and not is_array(rows[1]) then
    columns = {}
    for k in pairs(rows[1]) do columns[#columns + 1] = k end
    table.sort(columns, function(a, b) return tostring(a) < tostring(b) end)
  end
  local out = {}
  if columns and o.header ~= false then
    out[#out + 1] = native.format(columns, #columns, delim, quote)
  end
  for _, row in ipairs(rows) do
    local fields, n = {}, 0
    if columns and not is_array(row) then
      n = #columns
      for k, col in ipairs(columns) do fields[k] = cell(row[col]) end
    else
      n = columns and math.max(#columns, #row) or #row
      for k = 1, n do fields[k] = cell(row[k]) end
    end
    out[#out + 1] = native.format(fields, n, delim, quote)
  end
  return out
end

-- encode(rows, opts) -> CSV text.
function M.encode(rows, o)
  o = o or {}
  local eol = o.eol or "\n"
  local lines = lines_of(rows, o)
  if #lines == 0 then return "" end
  return table.concat(lines, eol) .. eol
end

-- write(path, rows, opts) -> number of rows written.
function M.write(path, rows, o)
  o = o or {}
  if type(path) ~= "string" then error("csv.write: path must be a string", 2) end
  local text = M.encode(rows, o)
  local f, err = io.open(path, "wb")
  if not f then fail { kind = "io", message = "cannot write " .. path .. ": " .. tostring(err) } end
  local ok, werr = f:write(text)
  f:close()
  if not ok then fail { kind = "io", message = "cannot write " .. path .. ": " .. tostring(werr) } end
  return #rows
end

return M
