-- ghl.cli.man: ghlua(1), the man page, rendered as roff (man macros) from
-- the command table (ghl.cli): the root's options, environment, files,
-- exit status and examples, then every visible command and subcommand with
-- its usage and the text its --help prints. The build runs the just-built
-- binary to write it (CMakeLists.txt), so the page always matches:
--   ghlua -e "io.write(require('ghl.cli.man').render('VERSION'))"
-- Text is escaped for roff: backslashes, hyphens as \-, lines starting
-- with '.' or "'", and any non-ASCII character as \[uXXXX]. Help texts are
-- laid out in columns, so they are kept as written (no-fill blocks).
local M = {}

-- Escape text for roff.
function M.escape(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  s = s:gsub("[\xC2-\xF4][\x80-\xBF]*", function(ch)
    local ok, cp = pcall(utf8.codepoint, ch)
    return ok and ("\\[u%04X]"):format(cp) or "?"
  end)
  s = s:gsub("[\x80-\xFF]", "?")
  return (s:gsub("^([.'])", "\\&%1"):gsub("\n([.'])", "\n\\&%1"))
end
local esc = M.escape

-- A block kept as written: each line escaped, empty lines as they are.
local function nofill(text)
  return ".nf\n" .. esc((text:gsub("\n+$", ""))) .. "\n.fi\n"
end

-- A help text: runs of lines that start at the margin are prose, filled
-- by roff; indented lines (columns of flags and values), the lines that
-- continue them and long unbreakable lines (URLs) stay as written, their
-- common indent taken off.
local function help_block(text)
  local out, prose, rows = {}, {}, {}
  local after_prose = false
  local function flush()
    if #prose > 0 then
      out[#out + 1] = ".PP\n" .. esc(table.concat(prose, " ")) .. "\n"
      prose, after_prose = {}, true
    end
    if #rows > 0 then
      local indent = math.huge
      for _, l in ipairs(rows) do indent = math.min(indent, #l:match("^ *")) end
      for i, l in ipairs(rows) do rows[i] = l:sub(indent + 1) end
      out[#out + 1] = (after_prose and "" or ".PP\n") .. ".RS 2\n" .. nofill(table.concat(rows, "\n")) .. ".RE\n"
      rows = {}
    end
    after_prose = false
  end
  for line in (text:gsub("\n+$", "") .. "\n"):gmatch("(.-)\n") do
    local verbatim = line:match("^%s") or line:match("^%S+$") and #line > 40
    if not line:match("%S") then
      flush()
    elseif not verbatim and #rows == 0 then
      prose[#prose + 1] = line
    else
      if #prose > 0 then
        out[#out + 1] = ".PP\n" .. esc(table.concat(prose, " ")) .. "\n"
        prose, after_prose = {}, true
      end
      rows[#rows + 1] = line
    end
  end
  flush()
  return table.concat(out)
end

-- Paragraphs (separated by empty lines) filled by roff.
local function paragraphs(text)
  local out = {}
  for para in (text .. "\n\n"):gmatch("(.-)\n\n+") do
    if para:match("%S") then out[#out + 1] = ".PP\n" .. esc((para:gsub("\n", " "))) .. "\n" end
  end
  return table.concat(out)
end

local function tagged(rows, font)
  local out = {}
  for _, r in ipairs(rows) do
    out[#out + 1] = (".TP\n\\f%s%s\\fR\n%s\n"):format(font, esc(r[1]), esc(r[2]))
  end
  return table.concat(out)
end

-- render(version) -> the page's roff text.
function M.render(version)
  local cli = require "ghl.cli.commands"
  local help = require "ghl.cli.help"
  local args = require "ghl.cli.args"
  local r = cli.root
  local out = {}
  local function add(s) out[#out + 1] = s end
  add(('.TH GHLUA 1 "" "ghlua %s" "User Commands"\n.nh\n.ad l\n'):format(esc(version or "")))
  add(".SH NAME\nghlua \\- " .. esc(r.summary) .. "\n")
  add(".SH SYNOPSIS\n")
  for line in r.usage:gmatch("[^\n]+") do
    local rest = line:match("^%s*ghlua%s*(.*)$")
    add(".B ghlua\n" .. esc(rest) .. "\n.br\n")
  end
  add(".SH DESCRIPTION\n")
  add(".B ghlua\nis " .. esc(r.summary) .. ": it runs Lua scripts and a REPL with the ghl library"
    .. " (OAuth login and a token store that refreshes itself, an API client that respects rate limits,"
    .. " webhooks, SSO), and the commands below.\n")
  add(paragraphs(r.notes))
  add(".SH OPTIONS\n")
  local opts = {}
  for _, d in ipairs(args.list(r.flags)) do
    local left = args.display(d)
    if d.long and d.short then left = "-" .. d.short .. ", " .. left end
    opts[#opts + 1] = { left .. (d.kind ~= "flag" and (" " .. (d.value or "VALUE")) or ""), d.desc or "" }
  end
  for _, o in ipairs(r.operands) do opts[#opts + 1] = o end
  add(tagged(opts, "B"))
  add(".SH COMMANDS\n")
  add(tagged(help.command_rows(r), "B"))
  cli.walk(function(node, path)
    for _, p in ipairs(path) do if p:sub(1, 2) == "__" then return end end
    if node.hidden then return end
    add('.SS "ghlua ' .. esc(table.concat(path, " ")) .. '"\n')
    if node.summary then add(esc((node.summary:gsub("^%l", string.upper))) .. ".\n") end
    add(".PP\n\\fBusage:\\fR " .. esc(cli.usage_of(node, path)) .. "\n")
    local text = help.help_text(node, path):gsub("^usage: [^\n]*\n", ""):gsub("^\n+", "")
    if node.summary then   -- said above already
      local s = node.summary:gsub("^%l", string.upper) .. "."
      if text:sub(1, #s) == s then text = text:sub(#s + 1):gsub("^\n+", "") end
    end
    if text:match("%S") then add(help_block(text)) end
  end)
  add(".SH ENVIRONMENT\n")
  add(tagged(r.environment, "B"))
  add(".SH FILES\n")
  add(tagged(r.files, "I"))
  add(".PP\n" .. esc("GHLUA_HOME defaults to $XDG_CONFIG_HOME/ghlua, else ~/.config/ghlua.") .. "\n")
  add(".SH EXIT STATUS\n" .. esc(r.exit_status) .. "\n")
  add(".SH EXAMPLES\n")
  for _, e in ipairs(r.examples) do
    add(".PP\n" .. esc((e[2]:gsub("^%l", string.upper))) .. ":\n.PP\n.RS 4\n" .. nofill(e[1]) .. ".RE\n")
  end
  add(".SH SEE ALSO\n.BR lua (1),\n.BR jq (1),\n.BR curl (1)\n")
  return table.concat(out)
end

return M
