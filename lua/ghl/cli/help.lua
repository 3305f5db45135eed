-- ghl.cli.help: the help of ghlua and of each command, rendered from the
-- command table (ghl.cli.commands): usage_of, help_text, print_help, and
-- the rows man and completion share. Also the command
-- `ghlua help [COMMAND [SUBCOMMAND...]]`: the same text as
-- `ghlua COMMAND SUBCOMMAND --help` (ghlua --help with no command). An
-- unknown name is a usage error (exit 2) naming the nearest.
local args = require "ghl.cli.args"
local commands = require "ghl.cli.commands"

local M = {}

M.summary = "show the help of ghlua or of a command (same as --help)"
M.usage = "ghlua help [COMMAND [SUBCOMMAND...]]"
M.flags = {}
M.arguments = { { "COMMAND", complete = "command", many = true } }

function M.run(argv)
  local node, path, word = commands.find(argv)
  if not node then
    local parent = commands.find(path)
    commands.unknown(parent, path, word)
  end
  M.print_help(node, path)
  return 0
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
  for _, c in ipairs(commands.children(node)) do
    if not c.hidden then rows[#rows + 1] = { c.name, c.summary or "" } end
  end
  return rows
end

local function root_help()
  local r = commands.root
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
  if node == commands.root then return root_help() end
  local help = node.help
  if type(help) == "function" then help = help() end
  local out = { "usage: ", commands.usage_of(node, path), "\n" }
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
    commands.walk(function(n, p) if n == node and #path == 0 then path = p end end)
  end
  io.stdout:write(M.help_text(node, path))
end

M.usage_of = commands.usage_of

return M
