-- ghl.repl.history: what the REPL may keep on disk, and the file it keeps.
--   history      $GHLUA_HOME/history (or $GHLUA_HISTFILE; /dev/null turns
--                it off), mode 0600, one statement a line (newlines as \n).
--   secrets      secret(line, known): a statement that holds a secret (a
--                stored or session token or client secret, or text shaped
--                like one) stays out of the file, and out of :save.
-- history_open returns nil, ghl.error when the file cannot be used; the
-- others never raise.
local E = require "ghl.error"
local sys = require "ghl.sys"

local M = {}

M.HISTORY_MAX = 1000

-- ---- Secrets ----

-- Text shaped like a secret, whatever its value: PITs, JWTs (HighLevel's
-- access and refresh tokens are JWTs), bearer headers, and the names under
-- which secrets travel. Matched on the line in lower case.
M.SECRET_PATTERNS = {
  { "%f[%w]pit%-%w", "a Private Integration Token (pit-…)" },
  { "eyj[%w_%-][%w_%-][%w_%-][%w_%-]", "a JWT (eyJ…)" },
  { "bearer%s", "a bearer token" },
  { "client_?secret", "a client secret" },
  { "refresh_?token", "a refresh token" },
  { "access_?token", "an access token" },
  { "ghl_pit", "GHL_PIT" },
  { "authorization", "an Authorization header" },
}

-- secret(line, known) -> reason | nil: whether the line holds one of the
-- strings in `known` (actual secrets; those shorter than 8 bytes are
-- ignored) or text shaped like a secret.
function M.secret(line, known)
  for _, s in ipairs(known or {}) do
    if type(s) == "string" and #s >= 8 and line:find(s, 1, true) then return "a secret of this session" end
  end
  local low = line:lower()
  for _, p in ipairs(M.SECRET_PATTERNS) do
    if low:find(p[1]) then return p[2] end
  end
  return nil
end

-- ---- History file ----

-- One entry a line: backslash and newline escaped.
function M.history_encode(entry)
  return (entry:gsub("\\", "\\\\"):gsub("\n", "\\n"))
end

function M.history_decode(line)
  return (line:gsub("\\(.)", function(ch) return ch == "n" and "\n" or ch end))
end

-- The history file's path, or nil (turned off, or no home to keep it in).
function M.history_path()
  local p = os.getenv("GHLUA_HISTFILE")
  if p and p ~= "" then
    if p == "/dev/null" then return nil end
    return p
  end
  local home = require("ghl.config").home()
  return home and (home .. "/history") or nil
end

local function read_lines(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local list = {}
  for line in f:lines() do
    if line ~= "" then list[#list + 1] = line end
  end
  f:close()
  return list
end

-- Open (create, 0600) the history file and return its entries, oldest
-- first, keeping only the last HISTORY_MAX. Returns nil, err when it cannot
-- be used.
function M.history_open(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" and not sys.stat(dir) then
    local ok, err = sys.mkdir(dir, tonumber("700", 8))
    if not ok then return nil, err end
  end
  local st = sys.stat(path)
  if st and st.type ~= "file" then return nil, E.new { kind = "io", message = path .. " is not a regular file" } end
  if not st then
    local f, err = io.open(path, "ab")
    if not f then return nil, E.new { kind = "io", message = err } end
    f:close()
  end
  local ok, err = sys.chmod(path, tonumber("600", 8))
  if not ok then return nil, err end
  local lines = read_lines(path) or {}
  if #lines > M.HISTORY_MAX then
    lines = table.move(lines, #lines - M.HISTORY_MAX + 1, #lines, 1, {})
    require("ghl.util").write_atomic(path, table.concat(lines, "\n") .. "\n")
  end
  local entries = {}
  for i, l in ipairs(lines) do entries[i] = M.history_decode(l) end
  return entries
end

-- Append one entry to the history file (kept 0600).
function M.history_append(path, entry)
  local st = sys.stat(path)
  if st and st.mode ~= tonumber("600", 8) then sys.chmod(path, tonumber("600", 8)) end
  local f = io.open(path, "ab")
  if not f then return false end
  f:write(M.history_encode(entry), "\n")
  f:close()
  return true
end

return M
