-- `ghlua auth SUBCOMMAND ...`: a parent node of the command table (see
-- ghl.cli); each subcommand is a module ghl.cli.auth.SUBCOMMAND, a node
-- with `summary`, `usage`, `flags`, optional `help`, and `run(argv)`.
local M = {}

M.summary = "OAuth: authorization links, login, tokens"
M.subcommands = {}
for i, name in ipairs { "login", "exchange", "status", "token", "refresh", "logout",
  "doctor", "reconnect", "locations", "pit", "url", "check" } do
  M.subcommands[i] = "ghl.cli.auth." .. name
end

return M
