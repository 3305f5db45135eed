-- ghl.cli.commands: the command table of `ghlua` and the walk over it
-- (ghl.cli is the dispatcher, ghl.cli.help renders the help).
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
--   run_by, entry  instead of run: the node is run by another app, the
--                module run_by (required by the program's entry point, never
--                by this app), function entry (default "run"), called
--                with {opts=, args=, usage=, command=}: the flags parsed
--                and checked as for any node, the operands (none unless
--                the node declares arguments), its usage line for the
--                app's usage errors (ghl.cli's M.start)
-- Nothing is run to read the table: help, completion (ghl.cli.completion)
-- and the man page (ghl.cli.man) walk it, so the definition of a command
-- that another app runs is here too, as data. The dispatcher handles, for
-- every node, --help and -h (usage and help on stdout, exit 0), the global
-- -v, unknown subcommands ("did you mean", exit 2), then calls run.
local E = require "ghl.error"

local M = {}

-- Commands in the order --help lists them (modules, or nodes).
M.commands = { "ghl.cli.auth", "ghl.cli.app", "ghl.cli.api", "ghl.cli.run", "ghl.cli.scopes", "ghl.cli.sim",
  "ghl.cli.webhook", "ghl.cli.store", "ghl.cli.sso", "ghl.cli.completion", "ghl.cli.help",
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
    { "GHLUA_STORE_KEY, GHLUA_STORE_KEY_FILE", "the key that seals the store's secrets (AES-256-GCM; required on PostgreSQL; 'ghlua store key new' makes one)" },
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

function M.quoted_list(names)
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
    #near > 0 and (" (did you mean " .. M.quoted_list(near) .. "?)") or ""),
    hint = #path == 0 and "see 'ghlua --help' for the commands" or
      ("see 'ghlua %s --help' for its subcommands"):format(table.concat(path, " ")) }
end

return M
