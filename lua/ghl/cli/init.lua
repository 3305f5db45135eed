-- The dispatcher for `ghlua COMMAND ...` and the text of `ghlua --help`.
-- Each command is a module ghl.cli.NAME with `summary`, `usage` and
-- `run(argv) -> exit status`.
local M = {}

-- Commands in the order --help lists them.
M.commands = { "auth", "app", "api", "run", "scopes", "sim", "webhook", "sso" }

-- Print a command's usage line and help (a string, or a function giving one).
function M.print_help(cmd)
  local help = cmd.help
  if type(help) == "function" then help = help() end
  io.stdout:write("usage: ", cmd.usage, "\n", help and ("\n" .. help) or "")
end

function M.run(name, argv)
  require("ghl.error").set_surface("cli")   -- hints name flags and variables, not the Lua API
  local cmd = require("ghl.cli." .. name)
  if argv[1] == "--help" or argv[1] == "-h" then
    M.print_help(cmd)
    return 0
  end
  return cmd.run(argv) or 0
end

function M.help()
  local lines = {
    "usage: ghlua [options] [script [args...]]",
    "       ghlua COMMAND [args...]",
    "",
    "ghlua is a Lua 5.4 interpreter with the HighLevel (LeadConnector) API built in.",
    "",
    "Options:",
    "  -e CODE      run CODE (may be repeated)",
    "  -l MODULE    require MODULE into a global of the same name",
    "  -i           enter the REPL after running the script or -e code",
    "  -v           trace HTTP requests and responses on stderr (secrets redacted)",
    "  --quiet      no notices on stderr (rate-limit waits, retries); those are",
    "               shown only when stderr is a terminal",
    "  -            run standard input",
    "  --           stop handling options",
    "  --version    print the versions of ghlua and its libraries",
    "  --help       show this help",
    "",
    "With no arguments on a terminal, ghlua starts the REPL.",
    "",
    "Commands:",
  }
  for _, name in ipairs(M.commands) do
    local cmd = require("ghl.cli." .. name)
    lines[#lines + 1] = string.format("  %-10s %s", name, cmd.summary)
  end
  for _, l in ipairs {
    "",
    "Run 'ghlua COMMAND --help' for a command's options.",
    "",
    "Environment:",
    "  GHLUA_TRACE=1       same as -v",
    "  GHLUA_CA_BUNDLE     a PEM file of extra trusted CA certificates, added to the",
    "                      system roots (TLS verification is always on)",
    "  GHLUA_DEBUG=1       add tracebacks to expected errors",
    "  GHLUA_QUIET=1       same as --quiet",
    "  GHLUA_HOME          where the token store lives (default ~/.config/ghlua)",
    "  GHLUA_API_BASE      API base URL (default https://services.leadconnectorhq.com)",
    "  GHLUA_MARKETPLACE_BASE  scheme and host of authorization links",
    "  GHL_CLIENT_ID, GHL_CLIENT_SECRET, GHL_REDIRECT_URI   an app without 'ghlua app add'",
    "  GHL_LOCATION_ID     the default location; GHL_TOKEN a bearer token for 'ghlua api'",
    "  GHL_PIT             a Private Integration Token for 'ghlua auth pit add'",
    "  http_proxy, https_proxy, no_proxy   honoured as libcurl does",
    "",
    "Exit status: 0 success, 1 failure, 2 usage error.",
  } do lines[#lines + 1] = l end
  io.stdout:write(table.concat(lines, "\n"), "\n")
end

return M
