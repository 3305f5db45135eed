-- Run the ghlua binary as a user would and capture what it printed.
-- run.ghlua({args...}, {stdin=, env={K=V}}) -> {code=, out=, err=}
local M = {}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = q

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
M.slurp = slurp

function M.tmpname()
  return os.tmpname()
end

-- Run a shell command line with optional stdin text and environment.
function M.sh(cmdline, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local prefix = ""
  for k, v in pairs(opts.env or {}) do
    prefix = prefix .. k .. "=" .. q(v) .. " "
  end
  local input = "/dev/null"
  if opts.stdin then
    input = os.tmpname()
    local f = assert(io.open(input, "wb"))
    f:write(opts.stdin)
    f:close()
  end
  local line = string.format("%s%s <%s >%s 2>%s", prefix ~= "" and ("env " .. prefix) or "",
                             cmdline, q(input), q(out), q(err))
  local ok, how, code = os.execute(line)
  local r = { out = slurp(out), err = slurp(err) }
  r.code = (how == "exit") and code or (128 + (code or 0))
  if ok and how == "exit" then r.code = 0 end
  os.remove(out); os.remove(err)
  if opts.stdin then os.remove(input) end
  return r
end

function M.ghlua(args, opts)
  local parts = { q(os.getenv("GHLUA")) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  return M.sh(table.concat(parts, " "), opts)
end

return M
