-- `ghlua auth SUBCOMMAND ...`: dispatches to ghl.cli.auth.SUBCOMMAND, each a
-- module with `summary`, `usage`, optional `help`, and `run(argv)`.
local args = require "ghl.cli.args"

local M = {}

M.subcommands = { "login", "exchange", "status", "token", "refresh", "logout",
  "doctor", "reconnect", "locations", "pit", "url", "check" }
M.summary = "OAuth: authorization links, login, tokens (ghlua auth --help)"
M.usage = "ghlua auth SUBCOMMAND [options]  (" .. table.concat(M.subcommands, ", ") .. ")"

function M.help()
  local lines = { "Subcommands:" }
  for _, name in ipairs(M.subcommands) do
    lines[#lines + 1] = string.format("  %-10s %s", name, require("ghl.cli.auth." .. name).summary)
  end
  lines[#lines + 1] = "\nRun 'ghlua auth SUBCOMMAND --help' for its options."
  return table.concat(lines, "\n") .. "\n"
end

function M.run(argv)
  local sub = argv[1]
  local known = false
  for _, name in ipairs(M.subcommands) do known = known or name == sub end
  if not known then
    args.usage(sub and ("unknown auth subcommand '" .. sub .. "'") or "missing auth subcommand", M.usage)
  end
  local cmd = require("ghl.cli.auth." .. sub)
  local rest = table.move(argv, 2, #argv, 1, {})
  if rest[1] == "--help" or rest[1] == "-h" then
    require("ghl.cli").print_help(cmd)
    return 0
  end
  return cmd.run(rest) or 0
end

return M
