-- `ghlua help [COMMAND [SUBCOMMAND...]]`: the same text as
-- `ghlua COMMAND SUBCOMMAND --help` (ghlua --help with no command). An
-- unknown name is a usage error (exit 2) naming the nearest.
local M = {}

M.summary = "show the help of ghlua or of a command (same as --help)"
M.usage = "ghlua help [COMMAND [SUBCOMMAND...]]"
M.flags = {}
M.arguments = { { "COMMAND", complete = "command", many = true } }

function M.run(argv)
  local cli = require "ghl.cli"
  local node, path, word = cli.find(argv)
  if not node then
    local parent = cli.find(path)
    cli.unknown(parent, path, word)
  end
  cli.print_help(node, path)
  return 0
end

return M
