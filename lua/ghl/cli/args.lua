-- Command-line flag parsing shared by every `ghlua COMMAND`. A spec maps
-- flag names (no dashes) to "string", "number", "flag" or "list"
-- (repeatable). Accepts `--name value` and `--name=value`; `--` ends flags.
-- Bad flags raise a ghl.error of kind "usage" (exit status 2) naming the
-- flag and the usage line.
local E = require "ghl.error"

local M = {}

local function usage(msg, line)
  E.raise { kind = "usage", message = msg .. (line and ("; usage: " .. line) or "") }
end

-- parse(argv, spec, usage_line) -> opts, positional
function M.parse(argv, spec, line)
  local opts, rest, i = {}, {}, 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      table.move(argv, i + 1, #argv, #rest + 1, rest)
      break
    elseif a:sub(1, 2) == "--" and #a > 2 then
      local name, value = a:sub(3):match("^([^=]+)=(.*)$")
      name = name or a:sub(3)
      local kind = spec[name]
      if not kind then usage(string.format("unknown option '--%s'", name), line) end
      if kind == "flag" then
        if value then usage(string.format("option '--%s' takes no value", name), line) end
        opts[name] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then usage(string.format("option '--%s' needs a value", name), line) end
        end
        if kind == "number" then
          local n = tonumber(value)
          if not n then usage(string.format("option '--%s' needs a number, got '%s'", name, value), line) end
          value = n
        end
        if kind == "list" then
          opts[name] = opts[name] or {}
          table.insert(opts[name], value)
        else
          opts[name] = value
        end
      end
    elseif a:sub(1, 1) == "-" and #a > 1 and not tonumber(a) then
      usage(string.format("unknown option '%s'", a), line)
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

M.usage = usage

return M
