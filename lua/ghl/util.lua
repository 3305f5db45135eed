-- ghl.util: the small helpers several modules need, each written once.
--
--   write_atomic(path, data [, mode=0600]) -> true, or nil, message
--       writes path.tmp (in path's directory, never through a symbolic
--       link, made `mode` before a byte is written), fsyncs it and renames
--       it over path: a reader sees the old file or the new one, never a
--       part. On failure the temporary file is removed.
--   slurp(path) -> the whole file as a string, or nil, message.
--   mkdirs(dir) -> true, or nil, err: mkdir -p, each directory made 0700
--       (umask permitting less); an existing one is left as it is.
--   shell_quote(s [, always]) -> s as one sh word: unchanged when it is
--       only characters the shell leaves alone (unless always), else in
--       single quotes.
--   iso8601([t [, zone="Z"]]) -> "2024-05-01T12:00:00Z" (t: epoch
--       seconds, now by default, the fraction dropped; zone "+00:00" gives
--       that form instead of "Z").
--   iso8601_ms(ms) -> "2024-05-01T12:00:00.123Z" from epoch milliseconds.
--   duration(seconds) -> "45s", "1m 30s", "5h 2m", "3d 4h": the two largest
--       units, the rest dropped (the sign too).
--   parse_duration(text) -> seconds, or nil, message: the inverse, for
--       "1m 30s", "90s", "2h", "1d 4h", "1h30m".
--   hex(bytes) -> lowercase hexadecimal, two digits a byte.
--   urlencode(s) -> s with every byte but RFC 3986's unreserved ones
--       (A-Z a-z 0-9 - . _ ~) as %XX (uppercase hex).
--   urldecode(s) -> %XX decoded and '+' as a space (form encoding).
--   redact(secret) -> "…abcd": how every secret is shown (the rule lives in
--       the natives, src/buf.c, which the HTTP trace uses too).
-- A recipe's sandbox loads this module too (ghl.resource needs urlencode):
-- the natives (ghl.sys, ghl._util) are required where used, never at load,
-- so the pure helpers work there and the others are refused by name.
local E = require "ghl.error"

local M = {}

local function sys() return require "ghl.sys" end

function M.redact(secret)
  return require("ghl._util").redact(secret)
end

-- ---- Files ----

local function message(err)
  if E.is(err) then return tostring(err.message) end
  return tostring(err)
end

function M.write_atomic(path, data, mode)
  local dir, name = path:match("^(.*)/([^/]*)$")
  if not dir then dir, name = ".", path elseif dir == "" then dir = "/" end
  local tmp = path .. ".tmp"
  os.remove(tmp)
  local f, err = sys().open(dir, name .. ".tmp", "w")   -- a new file, no symlink followed
  if not f then return nil, message(err) end
  local ok
  ok, err = sys().chmod(tmp, mode or 384)   -- 0600
  if ok then ok, err = f:write(data) end
  if ok then ok, err = sys().fsync(f) end
  local cok, cerr = f:close()
  if ok and not cok then ok, err = nil, cerr end
  if ok then ok, err = os.rename(tmp, path) end
  if ok then return true end
  os.remove(tmp)
  return nil, message(err)
end

function M.mkdirs(dir)
  local path = dir:sub(1, 1) == "/" and "" or "."
  for part in dir:gmatch("[^/]+") do
    path = path .. "/" .. part
    local ok, err = sys().mkdir(path, 448)
    if not ok then return nil, err end
  end
  return true
end

function M.slurp(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text, rerr = f:read("a")
  f:close()
  if not text then return nil, path .. ": " .. tostring(rerr) end
  return text
end

-- ---- Text ----

function M.shell_quote(s, always)
  s = tostring(s)
  if not always and s:match("^[%w@%%+=:,./_-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

function M.hex(bytes)
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

function M.urlencode(s)
  return (tostring(s):gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

function M.urldecode(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- ---- Time ----

function M.iso8601(t, zone)
  local s = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t or sys().time()))
  return s .. (zone or "Z")
end

function M.iso8601_ms(ms)
  ms = math.floor(ms)
  return os.date("!%Y-%m-%dT%H:%M:%S", ms // 1000) .. (".%03dZ"):format(ms % 1000)
end

local UNITS = { { "d", 86400 }, { "h", 3600 }, { "m", 60 }, { "s", 1 } }

function M.duration(secs)
  local a = math.floor(math.abs(secs))
  for i = 1, 3 do
    local name, size = UNITS[i][1], UNITS[i][2]
    if a >= size then
      local next_name, next_size = UNITS[i + 1][1], UNITS[i + 1][2]
      return ("%d%s %d%s"):format(a // size, name, a % size // next_size, next_name)
    end
  end
  return ("%ds"):format(a)
end

local SIZE = { d = 86400, h = 3600, m = 60, s = 1 }

function M.parse_duration(text)
  if type(text) ~= "string" or not text:find("%d") then
    return nil, ("not a duration: %q (say 90s, 1m 30s, 2h or 1d 4h)"):format(tostring(text))
  end
  local total, rest = 0, text:gsub("%s+", "")
  local last = math.huge
  for n, unit in rest:gmatch("(%d+)(%a)") do
    local size = SIZE[unit]
    if not size or size >= last then
      return nil, ("not a duration: %q (units d, h, m, s, largest first)"):format(text)
    end
    last = size
    total = total + tonumber(n) * size
  end
  if rest:gsub("%d+[dhms]", "") ~= "" then
    return nil, ("not a duration: %q (say 90s, 1m 30s, 2h or 1d 4h)"):format(text)
  end
  return total
end

return M
