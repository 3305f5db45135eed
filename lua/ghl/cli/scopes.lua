-- ghl.cli.scopes: the `ghlua scopes` command, a browser for the OAuth scope
-- catalogue (ghl.scopes). No argument lists the groups; groups, areas and
-- scopes as arguments show those scopes with their token types and flags;
-- --search matches scope, area and note text. --json prints the same as
-- JSON. An unknown group or scope is a usage error (exit 2) whose message
-- suggests the nearest names; a search that matches nothing exits 1.
local args = require "ghl.cli.args"
local scopes = require "ghl.scopes"

local M = {}

M.summary = "list OAuth scopes and the groups ghlua accepts for --scopes"

M.usage = "ghlua scopes [GROUP|SCOPE...] [--search WORD] [--json]"

M.help = [[
With no argument, list the scope groups (like the portal's checkboxes) and
the scopes each one stands for. With arguments (groups, area names such as
socialplanner, or scopes, separated by spaces or commas), show those scopes
in columns: scope, area, token type, flags and note.

  --search WORD   show the scopes whose name, area or note contains WORD
  --json          print JSON: [{name, scopes}] for the groups, else an
                  array of {scope, area, tokens, agency_only, agency_pro,
                  requestable, note}

Token type: Location (sub-account token), Company (agency token), both, or
unknown (no official statement). Flags: agency-only (Company token only),
agency-pro (needs the Agency Pro plan), not-requestable (never put it in an
authorization link). Group names ignore case, and spaces, '-' and '_' are
interchangeable: "Custom Fields", custom-fields and custom_fields are one.
Scope names are case-sensitive.

Exit status: 0, 1 when --search matches nothing, 2 for an unknown name.
]]

M.flags = { search = { "string", value = "WORD" }, json = "flag" }
M.arguments = { { "GROUP|SCOPE", complete = "scope", many = true } }

local function flags(r)
  local f = {}
  if r.agency_only then f[#f + 1] = "agency-only" end
  if r.agency_pro then f[#f + 1] = "agency-pro" end
  if not r.requestable then f[#f + 1] = "not-requestable" end
  return #f > 0 and table.concat(f, ",") or "-"
end

-- Print rows in aligned columns: SCOPE AREA TOKEN FLAGS NOTE.
local function table_out(rows)
  local cols = { { "SCOPE" }, { "AREA" }, { "TOKEN" }, { "FLAGS" } }
  for _, r in ipairs(rows) do
    local cells = { r.scope, r.area, r.tokens, flags(r) }
    for i, c in ipairs(cells) do cols[i][#cols[i] + 1] = c end
  end
  local width = {}
  for i, col in ipairs(cols) do
    width[i] = 0
    for _, c in ipairs(col) do width[i] = math.max(width[i], utf8.len(c) or #c) end
  end
  for n = 1, #rows + 1 do
    local line = {}
    for i, col in ipairs(cols) do line[i] = col[n] .. string.rep(" ", width[i] - #col[n]) end
    local note = n == 1 and "NOTE" or (rows[n - 1].note or "")
    io.stdout:write((table.concat(line, "  ") .. "  " .. note):gsub("%s+$", ""), "\n")
  end
end

-- Wrap words into lines of at most 78 columns, each indented by two spaces.
local function wrapped(words)
  local lines, line = {}, " "
  for _, w in ipairs(words) do
    if #line + 1 + #w > 78 and line ~= " " then lines[#lines + 1] = line; line = " " end
    line = line .. " " .. w
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

local function list_groups(json)
  local groups = scopes.groups()
  if json then
    io.stdout:write(assert(require("ghl.json").encode(groups)), "\n")
    return 0
  end
  for _, g in ipairs(groups) do
    if g.name == "all" then
      io.stdout:write(string.format("all (%d scopes): every requestable scope; 'ghlua scopes all' shows them\n", #g.scopes))
    else
      io.stdout:write(g.name, "\n", wrapped(g.scopes), "\n")
    end
  end
  io.stdout:write("\nAn area name (e.g. socialplanner, emails) also works as a group.\n",
                  "'ghlua scopes GROUP' shows token types; 'ghlua scopes --search WORD' searches.\n")
  return 0
end

local function show(rows, json)
  if json then
    local cjson = require "cjson"
    local out = {}
    for i, r in ipairs(rows) do
      out[i] = { scope = r.scope, area = r.area, tokens = r.tokens, agency_only = r.agency_only,
                 agency_pro = r.agency_pro, requestable = r.requestable, note = r.note or cjson.null }
    end
    io.stdout:write(#out > 0 and assert(require("ghl.json").encode(out)) or "[]", "\n")
  else
    table_out(rows)
  end
end

function M.run(argv)
  local opts, rest = args.parse(argv or {}, M.flags, M.usage)
  if opts.search then
    if #rest > 0 then args.usage("give either --search WORD or names, not both", M.usage) end
    local rows = scopes.search(opts.search)
    if #rows == 0 and not opts.json then
      io.stderr:write("ghlua: no scope matches '", opts.search, "'\n")
      return 1
    end
    show(rows, opts.json)
    return #rows > 0 and 0 or 1
  end
  if #rest == 0 then return list_groups(opts.json) end
  -- A single non-requestable scope is shown, not refused.
  local only = #rest == 1 and scopes.info(rest[1])
  local list, err = { only and only.scope }, nil
  if not only then list, err = scopes.parse(rest) end
  if not list then args.usage(err.message, M.usage) end
  local rows = {}
  for i, s in ipairs(list) do rows[i] = scopes.info(s) end
  show(rows, opts.json)
  return 0
end

return M
