-- ghl.columns: aligned text tables for the terminal, one record a line.
--   columns.render(cols, rows [, {header = true}]) -> array of lines
--   columns.width(s), columns.cell(v, max), columns.name_less(a, b, id_key)
-- cols is a list of {key=, title=, max=, right=}: a row's value under key
-- (any value; nil prints as "-") is shown with control bytes, invalid UTF-8
-- and bidi overrides escaped (ghl.error.sanitize), tabs and newlines as
-- spaces, and cut to max display columns with "…" when longer. Columns are
-- as wide as their widest cell (display width: East Asian wide characters
-- count two, combining marks none), separated by two spaces; right = true
-- aligns to the right. Lines carry no trailing spaces. So one record is
-- always exactly one line, whatever the server sent.
local E = require "ghl.error"

local M = {}

-- Display columns taken by code point c (an approximation of wcwidth).
local function cp_width(c)
  if (c >= 0x300 and c <= 0x36F) or (c >= 0x200B and c <= 0x200F) or (c >= 0xFE00 and c <= 0xFE0F) then return 0 end
  if (c >= 0x1100 and c <= 0x115F) or (c >= 0x2E80 and c <= 0xA4CF) or (c >= 0xAC00 and c <= 0xD7A3)
     or (c >= 0xF900 and c <= 0xFAFF) or (c >= 0xFE30 and c <= 0xFE4F) or (c >= 0xFF00 and c <= 0xFF60)
     or (c >= 0xFFE0 and c <= 0xFFE6) or (c >= 0x1F300 and c <= 0x1FAFF) or (c >= 0x20000 and c <= 0x3FFFD) then
    return 2
  end
  return 1
end

-- width(s) -> display columns of a valid UTF-8 string.
function M.width(s)
  local w = 0
  for _, c in utf8.codes(s) do w = w + cp_width(c) end
  return w
end

-- One cell: printable text on one line, at most max columns.
function M.cell(v, max)
  local s = v == nil and "-" or tostring(v)
  s = E.sanitize((s:gsub("[\t\r\n]", " ")))
  if not max or M.width(s) <= max then return s end
  local out, w = {}, 0
  for _, c in utf8.codes(s) do
    local cw = cp_width(c)
    if w + cw > max - 1 then break end
    out[#out + 1] = utf8.char(c)
    w = w + cw
  end
  return table.concat(out) .. "\u{2026}"
end

-- name_less(a, b, id_key) -> whether record a sorts before b: by name
-- (any case; named ones first), then by a[id_key].
function M.name_less(a, b, id_key)
  local an, bn = a.name and a.name:lower(), b.name and b.name:lower()
  if an ~= bn then
    if an and bn then return an < bn end
    return an ~= nil
  end
  return a[id_key] < b[id_key]
end

function M.render(cols, rows, opts)
  opts = opts or {}
  local cells, widths = {}, {}
  for j, c in ipairs(cols) do widths[j] = opts.header and M.width(c.title or c.key) or 0 end
  for i, r in ipairs(rows) do
    local line = {}
    for j, c in ipairs(cols) do
      line[j] = M.cell(r[c.key], c.max)
      widths[j] = math.max(widths[j], M.width(line[j]))
    end
    cells[i] = line
  end
  local function format(line)
    local parts = {}
    for j, c in ipairs(cols) do
      local pad = string.rep(" ", widths[j] - M.width(line[j]))
      parts[j] = c.right and (pad .. line[j]) or (line[j] .. pad)
    end
    return (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  local out = {}
  if opts.header then
    local titles = {}
    for j, c in ipairs(cols) do titles[j] = c.title or c.key end
    out[1] = format(titles)
  end
  for _, line in ipairs(cells) do out[#out + 1] = format(line) end
  return out
end

return M
