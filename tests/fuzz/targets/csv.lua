-- csv: CSV text as `ghl.csv` reads it (src/csv.c over libcsv, then
-- lua/ghl/csv.lua). The input is the text. Checked on every input:
--   * the native parser gives the same records and line numbers whether
--     the text comes in one piece or in chunks of 1..7 bytes;
--   * csv.parse with and without a header, ragged, and with ';' as the
--     delimiter raise nothing but ghl.errors;
--   * what csv.encode writes reads back as the same records.
local native = require "ghl._csv"
local csv = require "ghl.csv"
local check = require "check"

-- All records and lines of text fed in chunks of n bytes (the whole text
-- when n is nil), and the error, if any.
local function feed(text, n, o)
  local p <close> = native.parser(o)
  local rows, lines = {}, {}
  local function add(r, l, err)
    for i = 1, #r do rows[#rows + 1] = r[i]; lines[#lines + 1] = l[i] end
    return err
  end
  local step = n or math.max(#text, 1)
  for i = 1, #text, step do
    local err = add(p:feed(text:sub(i, i + step - 1)))
    if err then return rows, lines, err end
  end
  return rows, lines, add(p:finish())
end

local function parse(text, o)
  local ok, rows = pcall(csv.parse, text, o)
  if ok then return rows end
  check.expected(rows)
  return nil, rows
end

return function(text)
  for _, o in ipairs { {}, { strict = false }, { delim = ";", quote = "'" } } do
    local rows, lines, err = feed(text, nil, o)
    local crows, clines, cerr = feed(text, 1 + #text % 7, o)
    check.equal(crows, rows, "records fed in chunks")
    check.equal(clines, lines, "line numbers fed in chunks")
    check.equal(cerr and cerr.line, err and err.line, "error line fed in chunks")
  end
  parse(text, { header = true })
  parse(text, { header = true, ragged = true, delim = ";" })
  local rows = parse(text, { header = false })
  if rows then
    local again = parse(csv.encode(rows), { header = false })
    check.equal(again, rows, "records read back from csv.encode")
  end
end
