-- ghl.repl: the interactive loop behind `ghlua` on a terminal (and
-- `ghlua -i`). src/repl.c gives it libedit and signals (native.readline,
-- add_history, call); everything else is Lua, in five modules:
--   ghl.repl           the loop, lua.c's shape: a line is tried as an
--                      expression (printed, no `return` or `=` needed),
--                      else as a statement; while either reading says the
--                      chunk ends too early (<eof>) more lines are read. `_`
--                      holds the last result, `_err` the last error. Ctrl-C
--                      at the prompt drops the line; while a statement runs
--                      it interrupts it (an HTTP request is aborted, the
--                      session stays); Ctrl-D exits.
--   ghl.repl.session   the session: context (`ghl`, `client`/`c`, the
--                      banner), the store, the requests it saw, the
--                      simulator it started.
--   ghl.repl.commands  :help :whoami :use :scopes :explain :curl :more
--                      :save :sim :quit (M.COMMANDS).
--   ghl.repl.complete  Tab: complete_line(line, start, stop).
--   ghl.repl.history   the history file and what counts as a secret.
-- This module also re-exports the pieces the specs and other modules use
-- (secret, history_*, candidates, complete_line, recipe, COMMANDS,
-- shell_quote, duration). Errors in user code are printed, never raised; a
-- failing command prints a ghl.error like any statement.
local E = require "ghl.error"
local inspect = require "ghl.inspect"
local history = require "ghl.repl.history"
local session = require "ghl.repl.session"
local commands = require "ghl.repl.commands"
local complete = require "ghl.repl.complete"

local M = {}

M.PROMPT, M.PROMPT2 = "ghlua> ", ">> "
M.HISTORY_MAX = history.HISTORY_MAX
M.SIM_TIMEOUT = commands.SIM_TIMEOUT
M.SIM_ARGS = commands.SIM_ARGS
M.SECRET_PATTERNS = history.SECRET_PATTERNS
M.COMMANDS = commands.COMMANDS
M.secret = history.secret
M.history_encode, M.history_decode = history.history_encode, history.history_decode
M.history_path, M.history_open, M.history_append = history.history_path, history.history_open, history.history_append
M.peek, M.candidates, M.complete_line = complete.peek, complete.candidates, complete.complete_line
M.recipe, M.shell_quote = commands.recipe, commands.shell_quote
M.duration = session.duration

local out = session.out
local paint = session.paint

-- ---- Printing results and errors ----

local function prune_traceback(msg)
  local lines = {}
  for l in (msg .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  for i, l in ipairs(lines) do
    if l:find("lua/ghl/repl/", 1, true) then
      local cut = i
      if i > 1 and lines[i - 1]:match("^%s*%[C%]: in ") then cut = i - 1 end
      return table.concat(lines, "\n", 1, cut - 1)
    end
  end
  return msg
end

-- Print an error value: a ghl.error as its one-line form and its hint.
local function report(err)
  out:flush()
  local w = io.stderr
  if E.is(err) then
    local ok, line = pcall(tostring, err)
    line = ok and line or "?"
    local hint = rawget(err, "hint")
    if hint ~= nil then
      local suffix = " — hint: " .. tostring(hint):gsub("\n", " ")
      if line:sub(-#suffix) == suffix then line = line:sub(1, -#suffix - 1) end
    end
    w:write(paint("31", "error: ") .. E.sanitize(line), "\n")
    if hint ~= nil then w:write(paint("2", "hint: ") .. E.sanitize(hint), "\n") end
    local tb = rawget(err, "traceback")
    if type(tb) == "string" then w:write(E.sanitize(prune_traceback(tb), true), "\n") end
  else
    local msg = type(err) == "string" and err or ("(error object is a " .. type(err) .. " value)")
    w:write(paint("31", "error: ") .. E.sanitize(prune_traceback(msg), true), "\n")
  end
  w:flush()
end

local function print_values(color, ...)
  local summarised = false
  for i = 1, select("#", ...) do
    local text, s = inspect.render((select(i, ...)), { color = color })
    out:write(text, "\n")
    summarised = summarised or s
  end
  if summarised then out:write(paint("2", "(long arrays summarised: :more prints the last result in full)"), "\n") end
  out:flush()
end

-- ---- Reading statements ----

local function incomplete(err)
  return type(err) == "string" and err:sub(-5) == "<eof>"
end

-- Read one statement. Returns code, chunk, is_expression; code, nil, err
-- for a syntax error; "" when Ctrl-C dropped the input; nil at the end.
local function read(s)
  local rl = s.native.readline
  local line = rl(M.PROMPT)
  if line == nil then return nil end
  if line == false then out:write("\n") return "" end
  if line:match("^%s*$") then return "" end
  if line:match("^%s*:[^:]") or line:match("^%s*:$") then return line, "command" end
  local buf = line
  while true do
    local text = buf:gsub("^%s*=", "", 1)
    local f, eerr = load("return " .. text, "=stdin", "t", _G)
    if f then return buf, f, true end
    local g, serr = load(buf, "=stdin", "t", _G)
    if g then return buf, g, false end
    if not (incomplete(serr) or incomplete(eerr)) then return buf, nil, serr end
    local more = rl(M.PROMPT2)
    if more == nil then return buf, nil, serr end
    if more == false then out:write("\n") return "" end
    buf = buf .. "\n" .. more
  end
end

-- Keep a complete statement in the histories (the file only when it holds
-- no secret).
local function remember(s, code)
  if not s.native.tty then return end
  s.native.add_history(code)
  if s.history and not history.secret(code, s:secrets()) then
    history.history_append(s.history, code)
  end
end

-- Run one statement and print what it gives.
local function eval(s, code, f, expression)
  s.pending = {}
  local r = table.pack(s.native.call(f))
  local rec = { code = code, expression = expression, ok = r[1], requests = s.pending }
  s.pending = nil
  s.statements[#s.statements + 1] = rec
  if not r[1] then
    rawset(_G, "_err", r[2])
    report(r[2])
    return
  end
  if r.n >= 2 then
    if r[2] ~= nil then rawset(_G, "_", r[2]) end
    local p = table.pack(s.native.call(print_values, s.color, table.unpack(r, 2, r.n)))
    if not p[1] then report(p[2]) end
  end
end

local function loop(s)
  while not s.done do
    local code, f, extra = read(s)
    if code == nil then break end
    if code ~= "" then
      remember(s, code)
      if f == "command" then
        local r = table.pack(s.native.call(commands.run, s, code))
        if not r[1] then
          rawset(_G, "_err", r[2])
          report(r[2])
        end
      elseif f then
        eval(s, code, f, extra)
      else
        rawset(_G, "_err", extra)
        report(extra)
      end
    end
  end
end

-- run(native): the REPL, until Ctrl-D or :quit (src/repl.c calls it).
function M.run(native)
  local s = session.new(native)
  session.active = s
  local unobserve = require("ghl.client").observe(function(c, req) s:saw(c, req) end)
  if native.tty then
    local path = history.history_path()
    if path then
      local entries, err = history.history_open(path)
      if entries then
        s.history = path
        for _, e in ipairs(entries) do native.add_history(e) end
      else
        io.stderr:write("ghlua: history is off: ", tostring(err), "\n")
      end
    end
    local r = table.pack(native.call(s.banner, s))
    if not r[1] then report(r[2]) end
  else
    local r = table.pack(native.call(s.setup, s, true))
    if not r[1] then report(r[2]) end
  end
  local ok, err = pcall(loop, s)
  s:stop_sim()
  unobserve()
  session.active = nil
  if native.tty then out:write("\n") end
  out:flush()
  if not ok then error(err, 0) end
end

return M
