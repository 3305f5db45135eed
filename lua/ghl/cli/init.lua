-- ghl.cli: the command table of `ghlua`, its dispatcher and its help.
-- The table is a tree of nodes. The root is ghlua itself; each command is a
-- module ghl.cli.NAME, and a module is a node: it declares
--   summary      one line, shown in command lists and completion menus
--   usage        the usage line (computed for a node with subcommands)
--   help         more text for --help (a string, or a function giving one)
--   flags        its flags, in the spec format of ghl.cli.args (the same
--                table its run passes to args.parse)
--   arguments    its operands, in order: {"NAME", complete = ..., many =}
--   subcommands  child nodes: tables like this one, or names of modules
--   aliases      other names a subcommand answers to; hidden: not listed;
--                raw: its arguments reach run untouched (no --help, no -v)
--   run(argv)    the work: argv is what follows the node's name; returns
--                the exit status. A node without run is run by its nearest
--                ancestor that has one, which receives the subcommand names.
--   runs_alone   true: with subcommands, the node still runs itself when
--                the next word names none of them (ghlua sim [flags];
--                ghlua sim env)
-- Nothing is run to read the table: help, completion (ghl.cli.completion)
-- and the man page (ghl.cli.man) walk it. The dispatcher handles, for every
-- node, --help and -h (usage and help on stdout, exit 0), the global -v,
-- unknown subcommands ("did you mean", exit 2), then calls run.
local args = require "ghl.cli.args"
local E = require "ghl.error"

local M = {}

-- Commands in the order --help lists them (modules, or nodes).
M.commands = { "ghl.cli.auth", "ghl.cli.app", "ghl.cli.api", "ghl.cli.run", "ghl.cli.scopes", "ghl.cli.sim",
  "ghl.cli.webhook", "ghl.cli.sso", "ghl.cli.completion", "ghl.cli.help",
  { name = "__complete", hidden = true, raw = true,
    summary = "print completion candidates (used by the completion scripts)",
    usage = "ghlua __complete WORD... CURRENT",
    run = function(argv) return require("ghl.cli.completion").complete_command(argv) end } }

-- The root: ghlua's own options, parsed by main.c (they come before the
-- script or command); -v is global: it is also taken after a command.
M.root = {
  name = "ghlua",
  summary = "a Lua 5.4 interpreter with the HighLevel (LeadConnector) API built in",
  usage = "ghlua [options] [script [args...]]\n       ghlua COMMAND [args...]",
  flags = {
    e = { "list", short = "e", long = false, value = "CODE", desc = "run CODE (may be repeated)" },
    l = { "list", short = "l", long = false, value = "MODULE", desc = "require MODULE into a global of the same name" },
    i = { "flag", short = "i", long = false, desc = "enter the REPL after running the script or -e code" },
    v = { "flag", short = "v", long = false, global = true,
          desc = "trace HTTP requests and responses on stderr (secrets redacted); also after a command" },
    quiet = { "flag", desc = "no notices on stderr (rate-limit waits, retries); those are shown only when"
      .. " stderr is a terminal" },
    store = { "string", value = "URL|PATH", complete = "file",
              desc = "the token store: a SQLite file, or a PostgreSQL connection string (postgresql://USER@HOST/DB or"
                .. " 'host=... dbname=...') shared by several machines; same as GHLUA_STORE" },
    version = { "flag", desc = "print the versions of ghlua and its libraries" },
    help = { "flag", short = "h", desc = "show this help (--help COMMAND: the command's)" },
  },
  arguments = { { "script", complete = "file" } },
  subcommands = M.commands,
  -- Extra lines of the options list: not flags.
  operands = {
    { "-", "run standard input" },
    { "--", "stop handling options" },
  },
  notes = [[
With no arguments on a terminal, ghlua starts the REPL.

A first argument that is a command's name runs the command (to run a file
of that name, write ./NAME). Any other is a script file, as lua takes it;
but a word with no '/' and no '.' that names no file is taken as a
mistyped command: ghlua suggests the nearest and exits 2.]],
  environment = {
    { "GHLUA_TRACE=1", "same as -v" },
    { "GHLUA_CA_BUNDLE", "a PEM file of extra trusted CA certificates, added to the system roots (TLS verification is always on)" },
    { "GHLUA_DEBUG=1", "add tracebacks to expected errors" },
    { "GHLUA_QUIET=1", "same as --quiet" },
    { "GHLUA_HOME", "where the token store and the REPL history live (default $XDG_CONFIG_HOME/ghlua, else ~/.config/ghlua)" },
    { "GHLUA_STORE", "the token store: a SQLite file (default $GHLUA_HOME/ghlua.db) or a PostgreSQL connection string (postgresql://...)" },
    { "GHLUA_HISTFILE", "the REPL history file (/dev/null: none)" },
    { "GHLUA_API_BASE", "API base URL (default https://services.leadconnectorhq.com)" },
    { "GHLUA_MARKETPLACE_BASE", "scheme and host of authorization links" },
    { "GHL_CLIENT_ID, GHL_CLIENT_SECRET, GHL_REDIRECT_URI", "an app without 'ghlua app add'" },
    { "GHL_LOCATION_ID", "the default location" },
    { "GHL_TOKEN", "a bearer token for 'ghlua api' and 'ghlua run'" },
    { "GHL_PIT", "a Private Integration Token for 'ghlua auth pit add'" },
    { "GHL_SSO_SECRET", "the app's Shared Secret for 'ghlua sso'" },
    { "NO_COLOR", "when set and not empty, never colour" },
    { "BROWSER", "the browser 'ghlua auth login' opens (else xdg-open)" },
    { "http_proxy, https_proxy, no_proxy", "honoured as libcurl does" },
  },
  files = {
    { "$GHLUA_HOME/ghlua.db", "the token store (SQLite; directory 0700, file 0600): apps, tokens, webhook events" },
    { "$GHLUA_HOME/history", "the REPL history (statements that hold a secret are left out)" },
  },
  exit_status = "0 success, 1 failure, 2 usage error.",
  examples = {
    { "ghlua sim --ready-file /tmp/sim.json", "run the simulator" },
    { "ghlua app add myapp --client-id ID --redirect-uri http://localhost:8080/callback --scopes contacts",
      "store an app (the secret is asked for)" },
    { "ghlua auth login --app myapp", "approve it in a browser and store the tokens" },
    { "ghlua api GET /contacts/ --paginate --ndjson", "page through the contacts" },
    { "ghlua run bulk_tag.lua --param tag=vip --dry-run", "show the writes a recipe would make, and make none" },
    { "ghlua -e 'print(#require(\"ghl\").client{location = \"LOC\"}:get(\"/contacts/\").contacts)'",
      "script the API with the stored token of location LOC" },
    { "source <(ghlua completion bash)", "complete commands, flags, scopes, app names and API paths" },
  },
}

-- ---- The tree ----

-- A subcommand entry as a node: a module name is required (and named
-- after its last segment), a table is the node itself.
local function resolve(entry)
  if type(entry) ~= "string" then return entry end
  local node = require(entry)
  node.name = node.name or entry:match("([^.]+)$")
  return node
end

-- children(node) -> its subcommand nodes, in order (hidden ones included).
function M.children(node)
  local out = {}
  for i, entry in ipairs(node.subcommands or {}) do out[i] = resolve(entry) end
  return out
end

-- child(node, word) -> the subcommand named (or aliased) word, or nil.
-- Only the module of the one named is loaded.
function M.child(node, word)
  for _, entry in ipairs(node.subcommands or {}) do
    if type(entry) == "string" and entry:match("([^.]+)$") == word then return resolve(entry) end
  end
  for _, c in ipairs(M.children(node)) do
    if c.name == word then return c end
    for _, a in ipairs(c.aliases or {}) do if a == word then return c end end
  end
  return nil
end

-- find(words) -> node, path (the names from the root), or nil, path, word
-- (the first word that names no subcommand).
function M.find(words)
  local node, path = M.root, {}
  for _, w in ipairs(words) do
    local c = M.child(node, w)
    if not c then return nil, path, w end
    node = c
    path[#path + 1] = c.name
  end
  return node, path
end

-- walk(fn): fn(node, path) for every node under the root, parents first.
function M.walk(fn, node, path)
  node, path = node or M.root, path or {}
  for _, c in ipairs(M.children(node)) do
    local p = table.move(path, 1, #path, 1, {})
    p[#p + 1] = c.name
    fn(c, p)
    M.walk(fn, c, p)
  end
end

-- The names a word might have meant among the visible subcommands of node:
-- those it starts, or within one edit (two for longer words; a swap of two
-- neighbours counts one); nearest first, then by name.
function M.suggest(node, word)
  local distance = require("ghl.scopes").distance
  local scored = {}
  for _, c in ipairs(M.children(node)) do
    if not c.hidden then
      local name, limit = c.name, #word < 5 and 1 or 2
      local d = distance(word, name, limit)
      if #word >= 2 and name:sub(1, #word) == word then d = math.min(d, 1) end
      if d > limit and #word == #name then   -- one transposition
        for i = 1, #word - 1 do
          if word:sub(1, i - 1) .. word:sub(i + 1, i + 1) .. word:sub(i, i) .. word:sub(i + 2) == name then d = 1 end
        end
      end
      if d <= limit then scored[#scored + 1] = { name = name, d = d } end
    end
  end
  table.sort(scored, function(a, b)
    if a.d ~= b.d then return a.d < b.d end
    return a.name < b.name
  end)
  local out = {}
  for i, s in ipairs(scored) do out[i] = s.name end
  return out
end

local function quoted_list(names)
  local q = {}
  for i, n in ipairs(names) do q[i] = "'" .. n .. "'" end
  if #q <= 1 then return q[1] or "" end
  return table.concat(q, ", ", 1, #q - 1) .. " or " .. q[#q]
end

-- The usage line of a node: its own, or for a node with subcommands
-- "ghlua PATH SUBCOMMAND [options]  (a, b, c)".
function M.usage_of(node, path)
  if node.usage then return node.usage end
  local names = {}
  for _, c in ipairs(M.children(node)) do if not c.hidden then names[#names + 1] = c.name end end
  return ("ghlua %s SUBCOMMAND [options]  (%s)"):format(table.concat(path, " "), table.concat(names, ", "))
end

-- The usage error for a word that names no subcommand of node.
function M.unknown(node, path, word)
  local what = #path == 0 and "command" or (table.concat(path, " ") .. " subcommand")
  local near = M.suggest(node, word)
  E.raise { kind = "usage", message = ("unknown %s '%s'%s"):format(what, word,
    #near > 0 and (" (did you mean " .. quoted_list(near) .. "?)") or ""),
    hint = #path == 0 and "see 'ghlua --help' for the commands" or
      ("see 'ghlua %s --help' for its subcommands"):format(table.concat(path, " ")) }
end

-- ---- Help ----

local function wrap(text, width, indent)
  local lines, line = {}, ""
  for w in text:gmatch("%S+") do
    if line ~= "" and #line + 1 + #w > width then lines[#lines + 1] = line; line = "" end
    line = line == "" and w or (line .. " " .. w)
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n" .. indent)
end

-- Two columns: "  left   text", text wrapped at 79 columns.
local function columns(rows, min)
  local w = min or 0
  for _, r in ipairs(rows) do if #r[1] < 24 then w = math.max(w, #r[1]) end end
  local out = {}
  for _, r in ipairs(rows) do
    local pad = #r[1] <= w and (r[1] .. (" "):rep(w - #r[1] + 2)) or (r[1] .. "\n" .. (" "):rep(w + 4))
    out[#out + 1] = "  " .. pad .. wrap(r[2], 77 - w - 2, (" "):rep(w + 4))
  end
  return table.concat(out, "\n")
end
M.columns = columns

-- The options list of a node's flags that carry a desc: {left, desc} rows.
function M.option_rows(node)
  local rows = {}
  for _, d in ipairs(args.list(node.flags)) do
    if d.desc then
      local left = args.display(d)
      if d.long and d.short then left = "-" .. d.short .. ", " .. left end
      if d.kind ~= "flag" then left = left .. " " .. (d.value or "VALUE") end
      rows[#rows + 1] = { left, d.desc }
    end
  end
  return rows
end

-- The visible subcommands as {name, summary} rows.
function M.command_rows(node)
  local rows = {}
  for _, c in ipairs(M.children(node)) do
    if not c.hidden then rows[#rows + 1] = { c.name, c.summary or "" } end
  end
  return rows
end

local function root_help()
  local r = M.root
  local parts = {
    "usage: " .. r.usage, "",
    "ghlua is " .. r.summary .. ".", "",
    "Options:", columns((function()
      local rows = M.option_rows(r)
      for _, o in ipairs(r.operands) do rows[#rows + 1] = o end
      return rows
    end)(), 11), "",
    r.notes, "",
    "Commands:", columns(M.command_rows(r), 10), "",
    "Run 'ghlua help COMMAND' (or 'ghlua COMMAND --help') for a command's options,",
    "'ghlua completion bash|zsh|fish' for shell completion; 'man ghlua' has it all.", "",
    "Environment:", columns(r.environment, 18), "",
    "Exit status: " .. r.exit_status,
  }
  return table.concat(parts, "\n") .. "\n"
end

-- help_text(node, path) -> what `ghlua PATH --help` prints.
function M.help_text(node, path)
  if node == M.root then return root_help() end
  local help = node.help
  if type(help) == "function" then help = help() end
  local out = { "usage: ", M.usage_of(node, path), "\n" }
  local subs = M.command_rows(node)
  if #subs > 0 then
    out[#out + 1] = "\n" .. (node.summary and (node.summary:gsub("^%l", string.upper) .. ".\n\n") or "")
    out[#out + 1] = "Subcommands:\n" .. columns(subs, 8) .. "\n"
  elseif not help and node.summary then
    out[#out + 1] = "\n" .. node.summary:gsub("^%l", string.upper) .. ".\n"
  end
  local opts = M.option_rows(node)
  if #opts > 0 then out[#out + 1] = "\nOptions:\n" .. columns(opts) .. "\n" end
  if help then out[#out + 1] = "\n" .. help:gsub("\n*$", "\n") end
  if #subs > 0 then
    out[#out + 1] = ("\nRun 'ghlua %s SUBCOMMAND --help' for its options.\n"):format(table.concat(path, " "))
  end
  return table.concat(out)
end

-- Print a node's help (a command module, or a node found by path).
function M.print_help(node, path)
  if not path then
    path = {}
    M.walk(function(n, p) if n == node and #path == 0 then path = p end end)
  end
  io.stdout:write(M.help_text(node, path))
end

-- ---- Dispatch ----

-- is_command(word) -> true when `ghlua WORD ...` runs a command, false when
-- WORD is a script file; raises a usage error for a word that looks like a
-- mistyped command (no '/', no '.', no such file).
function M.is_command(word)
  if word:find("[/.]") then return false end
  if M.child(M.root, word) then return true end
  if require("ghl.sys").stat(word) then return false end
  local near = M.suggest(M.root, word)
  E.raise { kind = "usage",
    message = #near > 0 and ("unknown command '%s' (did you mean %s?)"):format(word, quoted_list(near))
      or ("unknown command '%s', and no file '%s' to run"):format(word, word),
    hint = "'ghlua --help' lists the commands; a script is run by its path (./" .. word .. ")" }
end

-- The global flags (root flags marked global) a node does not declare
-- itself, by token.
local function globals(node)
  local out = {}
  for _, d in ipairs(args.list(M.root.flags)) do
    if d.global then
      local own = args.lookup(node.flags or {}, args.display(d))
      if not own then out[args.display(d)] = d end
    end
  end
  return out
end

local function apply_global(d)
  if d.name == "v" then require("ghl.http").trace(true) end
end

local function wants_help(node, token)
  return (token == "--help" or token == "-h") and not args.lookup(node.flags or {}, token)
end

-- run(name, argv) -> exit status of `ghlua NAME ARGV...`.
function M.run(name, argv)
  require("ghl.error").set_surface("cli")   -- hints name flags and variables, not the Lua API
  local node = M.child(M.root, name)
  if not node then M.unknown(M.root, {}, name) end
  local path, chain = { node.name }, { node }
  local rest = {}   -- the subcommand names, then the node's own arguments
  local i = 1
  -- Down the subcommands; global flags and --help may come before each.
  while node.subcommands do
    local w = argv[i]
    if w == nil then
      if node.runs_alone then break end   -- a command that also runs itself (ghlua sim)
      args.usage("missing " .. table.concat(path, " ") .. " subcommand", M.usage_of(node, path))
    elseif wants_help(node, w) then
      M.print_help(node, path)
      return 0
    elseif globals(node)[w] then
      apply_global(globals(node)[w])
      i = i + 1
    else
      local c = M.child(node, w)
      if not c and node.runs_alone then break end   -- its own flags and arguments
      if not c then M.unknown(node, path, w) end
      node = c
      path[#path + 1] = c.name
      chain[#chain + 1] = c
      rest[#rest + 1] = c.name
      i = i + 1
    end
  end
  -- The node's own arguments: --help, then the global flags taken out.
  local own = table.move(argv, i, #argv, 1, {})
  if node.raw then return node.run(own) or 0 end
  local g, drop = globals(node), {}
  for _, f in ipairs(args.scan(own, node.flags or {})) do
    local idx, d, token = f[1], f[2], f[3]
    if not d and wants_help(node, token) then
      M.print_help(node, path)
      return 0
    end
    if not d and g[token] then drop[idx] = g[token] end
  end
  for _, d in pairs(drop) do apply_global(d) end
  for idx, a in ipairs(own) do if not drop[idx] then rest[#rest + 1] = a end end
  -- The nearest node with run gets the words after its own name (the
  -- node at depth k has its name at rest[k - 1]).
  for k = #chain, 1, -1 do
    if chain[k].run then return chain[k].run(table.move(rest, k, #rest, 1, {})) or 0 end
  end
  error("ghl.cli: no run for 'ghlua " .. table.concat(path, " ") .. "'")
end

return M
