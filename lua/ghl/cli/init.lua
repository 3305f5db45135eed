-- ghl.cli: the dispatcher of `ghlua COMMAND ...`. The command table is
-- ghl.cli.commands (read it to learn the node format), the help
-- ghl.cli.help; a command module requires those, never this one. The
-- dispatcher handles, for every node, --help and -h (usage and help on
-- stdout, exit 0), the global -v, unknown subcommands ("did you mean",
-- exit 2), then calls run, or for a node that another app runs (node.run_by)
-- returns what to start to the program's entry point (M.start). The table
-- and the help are re-exported here.
local args = require "ghl.cli.args"
local commands = require "ghl.cli.commands"
local help = require "ghl.cli.help"
local E = require "ghl.error"

local M = {}

for _, k in ipairs { "commands", "root", "children", "child", "find", "walk", "suggest", "usage_of", "unknown" } do
  M[k] = commands[k]
end
for _, k in ipairs { "columns", "option_rows", "command_rows", "help_text", "print_help" } do M[k] = help[k] end

-- ---- Dispatch ----

-- is_command(word) -> true when `ghlua WORD ...` runs a command, false when
-- WORD is a script file; raises a usage error for a word that looks like a
-- mistyped command (no such file). The host asks only for words without
-- '/' or '.' (src/main.c: those are scripts' paths).
function M.is_command(word)
  if commands.child(commands.root, word) then return true end
  if require("ghl.sys").stat(word) then return false end
  local near = commands.suggest(commands.root, word)
  E.raise { kind = "usage",
    message = #near > 0 and ("unknown command '%s' (did you mean %s?)"):format(word, commands.quoted_list(near))
      or ("unknown command '%s', and no file '%s' to run"):format(word, word),
    hint = "'ghlua --help' lists the commands; a script is run by its path (./" .. word .. ")" }
end

-- The global flags (root flags marked global) a node does not declare
-- itself, by token.
local function globals(node)
  local out = {}
  for _, d in ipairs(args.list(commands.root.flags)) do
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

-- A node another app runs (node.run_by, node.entry): its flags are parsed
-- and checked here as any node's, and what to start goes back to the
-- program's entry point (main.c), which requires node.run_by and calls
-- its function entry with start = {app= (node.run_by), entry=, opts= (the parsed
-- flags), args= (the operands), usage= (the node's usage line, for the
-- app's usage errors), command= ("sim env")}. The dispatcher never
-- requires another app. A node that declares no arguments takes none.
function M.start(node, path, own, drop)
  local words = {}
  for idx, a in ipairs(own) do if not drop[idx] then words[#words + 1] = a end end
  local usage = commands.usage_of(node, path)
  local opts, operands = args.parse(words, node.flags or {}, usage)
  if not node.arguments and #operands > 0 then args.usage("unexpected argument '" .. operands[1] .. "'", usage) end
  return { app = node.run_by, entry = node.entry or "run", opts = opts, args = operands, usage = usage,
    command = table.concat(path, " ") }
end

-- run(name, argv) -> exit status of `ghlua NAME ARGV...`, or for a node
-- another app runs the table saying what to start (M.start).
function M.run(name, argv)
  require("ghl.error").set_surface("cli")   -- hints name flags and variables, not the Lua API
  local node = commands.child(commands.root, name)
  if not node then commands.unknown(commands.root, {}, name) end
  local path, chain = { node.name }, { node }
  local rest = {}   -- the subcommand names, then the node's own arguments
  local i = 1
  -- Down the subcommands; global flags and --help may come before each.
  while node.subcommands do
    local w = argv[i]
    if w == nil then
      if node.runs_alone then break end   -- a command that also runs itself (ghlua sim)
      args.usage("missing " .. table.concat(path, " ") .. " subcommand", commands.usage_of(node, path))
    elseif wants_help(node, w) then
      help.print_help(node, path)
      return 0
    elseif globals(node)[w] then
      apply_global(globals(node)[w])
      i = i + 1
    else
      local c = commands.child(node, w)
      if not c and node.runs_alone then break end   -- its own flags and arguments
      if not c then commands.unknown(node, path, w) end
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
      help.print_help(node, path)
      return 0
    end
    if not d and g[token] then drop[idx] = g[token] end
  end
  for _, d in pairs(drop) do apply_global(d) end
  if node.run_by then return M.start(node, path, own, drop) end
  for idx, a in ipairs(own) do if not drop[idx] then rest[#rest + 1] = a end end
  -- The nearest node with run gets the words after its own name (the
  -- node at depth k has its name at rest[k - 1]).
  for k = #chain, 1, -1 do
    if chain[k].run then return chain[k].run(table.move(rest, k, #rest, 1, {})) or 0 end
  end
  error("ghl.cli: no run for 'ghlua " .. table.concat(path, " ") .. "'")
end

return M
