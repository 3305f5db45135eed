-- support.readme: run the code blocks of a Markdown file (README.md) as a
-- reader would, one after the other, and say where the file and the
-- product part ways. Used by tests/cli/readme_spec.lua.
--
-- The convention (README.md's Development section says it too): every
-- fenced block runs by default, in file order, in one private session:
--   ```sh (shell, bash)  a shell script, run with `set -e` in the
--                        variables and directory the blocks before it
--                        left (as in one terminal); it must exit 0
--   ```console           lines "$ COMMAND" (a trailing \ continues it),
--                        each followed by the output it must print
--                        (stdout and stderr together); each must exit 0,
--                        or N when the command ends in "# exit status N"
--   ```lua               a script run by `ghlua FILE`; it must exit 0
-- Any other block (no language, text, json, ...) must be marked. A marker
-- is an HTML comment on the line before the fence (blank lines between are
-- fine), invisible on GitHub:
--   <!-- readme-test: skip REASON -->  not run (a real account, make ...)
--   <!-- readme-test: background -->   a shell block that keeps running
--                        (a server): started, then stopped at the end; the
--                        next block must be its output, which the test
--                        waits for
--   <!-- readme-test: output -->       the output of the block before it
--                        (for a background block: what it has printed so
--                        far must start with it)
--   <!-- readme-test: save NAME -->    written to file NAME in the session's
--                        directory, for a later block to use; not run
--   <!-- readme-test: excerpt PATH --> a verbatim part of the repository's
--                        PATH (a later block runs the file); not run
--   <!-- readme-test: commands -->     a summary whose lines "ghlua WORD"
--                        name commands: `ghlua WORD --help` must exit 0
-- In shown output, "..." stands for any text within a line, and a line of
-- just "..." for any number of lines; trailing spaces are ignored.
--
-- The session: a temporary directory with its own HOME (so the token
-- store and the simulator's records are private), `ghlua` (the binary
-- under test) first on PATH, every top-level entry of the repository
-- linked into the working directory (examples/...), BROWSER set to curl
-- following redirects (no browser; loopback only), and nothing else of the
-- caller's environment but PATH, LANG, NO_COLOR, TMPDIR and the sanitizer
-- options. Two things differ from the text, because port 3000 may be
-- taken on the machine running the tests: "localhost:3000" becomes a free
-- port, and a background `ghlua sim` registers its app's redirect URI
-- there (--redirect-uri).
--
--   local doc = readme.parse(text, "README.md")   -- {blocks=, problems=}
--   local s = readme.session { src = DIR, port = N }
--   readme.title(block) -- "line 12, sh: ghlua sim ..."
--   s.run(block)        -- raises a message naming README.md:LINE on drift
--   s.close()           -- stops background blocks; true when they stopped
--                       -- on SIGTERM
local sys = require "ghl.sys"
local run = require "support.run"

local M = {}

M.TIMEOUT = 120        -- seconds a foreground block may run
M.READY_TIMEOUT = 30   -- seconds to wait for a background block's output

local q = run.quote
local SHELLS = { sh = "sh", shell = "sh", bash = "bash" }
local MARKERS = { skip = "REASON", background = false, output = false, save = "NAME", excerpt = "PATH",
  commands = false }

-- ---- Parsing ----

local function split_lines(text)
  local out = {}
  for l in (text:gsub("\r\n", "\n")):gmatch("([^\n]*)\n?") do out[#out + 1] = l end
  if out[#out] == "" then out[#out] = nil end
  return out
end

-- The commands of a console block: {{line=, cmd=, expect=}...}, or nil,
-- problem.
local function console_commands(b)
  local cmds, cur = {}, nil
  local lines = split_lines(b.text)
  local i = 1
  while i <= #lines do
    local l = lines[i]
    local cmd = l:match("^%$ (.*)$") or (l == "$" and "")
    if cmd then
      local n = b.line + i
      while cmd:match("\\$") and lines[i + 1] do
        i = i + 1
        cmd = cmd .. "\n" .. lines[i]
      end
      cur = { line = n, cmd = cmd, expect = {} }
      cmds[#cmds + 1] = cur
    elseif not cur then
      return nil, "a console block starts with a \"$ COMMAND\" line"
    else
      table.insert(cur.expect, l)
    end
    i = i + 1
  end
  for _, c in ipairs(cmds) do c.expect = table.concat(c.expect, "\n") end
  return cmds
end

-- parse(text, name) -> {blocks = {...}, problems = {"NAME:LINE: ..."}}.
-- A block: {line (of its opening fence), lang, info, text, kind = "sh" |
-- "console" | "lua" | "background" | "output" | "save" | "excerpt" |
-- "commands" | "skip", arg (the marker's), of (an output block's block),
-- commands (a console block's)}. An unmarked block that cannot run is a
-- problem, and gets no kind.
function M.parse(text, name)
  local lines = split_lines(text)
  local blocks, problems = {}, {}
  local function problem(n, msg) problems[#problems + 1] = ("%s:%d: %s"):format(name, n, msg) end
  local pending
  local i = 1
  while i <= #lines do
    local l = lines[i]
    local indent, fence, info = l:match("^( ? ? ?)(```+)%s*([^`]-)%s*$")
    if not fence then indent, fence, info = l:match("^( ? ? ?)(~~~+)%s*(.-)%s*$") end
    if fence then
      local body, j, closed = {}, i + 1, false
      while j <= #lines do
        local c = lines[j]
        local cf = c:match("^ ? ? ?(" .. fence:sub(1, 1):rep(3) .. "+)%s*$")
        if cf and cf:sub(1, 1) == fence:sub(1, 1) and #cf >= #fence then closed = true break end
        if c:sub(1, #indent):match("^ *$") then c = c:sub(#indent + 1) end
        body[#body + 1] = c
        j = j + 1
      end
      if not closed then problem(i, "a code block that is never closed") end
      blocks[#blocks + 1] = { line = i, info = info, lang = (info:match("^([%w_+-]*)") or ""):lower(),
        text = #body > 0 and (table.concat(body, "\n") .. "\n") or "", marker = pending }
      pending = nil
      i = j + 1
    else
      local m = l:match("^%s*<!%-%-%s*readme%-test:%s*(.-)%s*%-%->%s*$")
      if m then
        if pending then problem(pending.line, "a readme-test marker with no code block after it") end
        local word, arg = m:match("^(%S*)%s*(.-)$")
        pending = { line = i, word = word, arg = arg }
      elseif l:match("^%s*<!%-%-") and l:find("readme-test", 1, true) then
        problem(i, "a malformed marker: write <!-- readme-test: WORD [ARG] --> on one line")
      elseif pending and not l:match("^%s*$") then
        problem(pending.line, "a readme-test marker must come right before a code block")
        pending = nil
      end
      i = i + 1
    end
  end
  if pending then problem(pending.line, "a readme-test marker with no code block after it") end

  for k, b in ipairs(blocks) do
    local m = b.marker
    if m then
      local want = MARKERS[m.word]
      if want == nil then
        problem(m.line, ("unknown readme-test marker '%s' (skip, background, output, save, excerpt, commands)")
          :format(m.word))
      elseif want and m.arg == "" then
        problem(m.line, ("readme-test: %s needs a %s"):format(m.word, want))
      elseif not want and m.arg ~= "" then
        problem(m.line, ("readme-test: %s takes no argument"):format(m.word))
      else
        b.kind, b.arg = m.word, m.arg
      end
      if b.kind == "background" and not SHELLS[b.lang] then
        problem(m.line, "readme-test: background is for a shell block (```sh)")
        b.kind = nil
      end
      if b.kind == "save" and (m.arg:find("/", 1, true) or m.arg:match("^%.")) then
        problem(m.line, "readme-test: save takes a plain file name")
        b.kind = nil
      end
    elseif SHELLS[b.lang] then
      b.kind = "sh"
    elseif b.lang == "console" then
      b.kind = "console"
    elseif b.lang == "lua" then
      b.kind = "lua"
    else
      problem(b.line, ("a ```%s block the test cannot run: mark it on the line before, e.g."
        .. " <!-- readme-test: skip REASON --> (see Development in README.md)"):format(b.lang))
    end
    if b.kind == "console" then
      local cmds, why = console_commands(b)
      if not cmds then problem(b.line, why) b.kind = nil end
      b.commands = cmds
    end
  end
  for k, b in ipairs(blocks) do
    if b.kind == "output" then
      local prev = blocks[k - 1]
      if not (prev and (prev.kind == "sh" or prev.kind == "lua" or prev.kind == "background")) then
        problem(b.marker.line, "readme-test: output must follow a shell or Lua block that runs")
        b.kind = nil
      else
        b.of = prev
      end
    elseif b.kind == "background" then
      local nxt = blocks[k + 1]
      if not (nxt and nxt.marker and nxt.marker.word == "output") then
        problem(b.marker.line, "a background block needs an output block right after it"
          .. " (<!-- readme-test: output -->): the test waits for that output")
      end
    end
  end
  return { blocks = blocks, problems = problems }
end

-- A short title for a block: "line 12, sh: ghlua sim --auto-approve".
function M.title(b)
  local first = b.text:match("^%s*([^\n]*)") or ""
  if b.kind == "console" and b.commands[1] then first = "$ " .. b.commands[1].cmd:match("^[^\n]*") end
  if #first > 60 then first = first:sub(1, 57) .. "..." end
  return ("line %d, %s: %s"):format(b.line, b.kind or b.lang, first)
end

-- ---- Output matching ----

local function norm(text)
  local out = {}
  for _, l in ipairs(split_lines(text)) do out[#out + 1] = (l:gsub("%s+$", "")) end
  while #out > 0 and out[#out] == "" do out[#out] = nil end
  return out
end

local function line_pattern(e)
  local p = e:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("%%%.%%%.%%%.", ".-")
  return "^" .. p .. "$"
end

-- match(expected, actual, prefix) -> true, or false and the index of the
-- first expected line that could not be matched. "..." in a line matches
-- any text; a line "..." any number of lines; with prefix, actual may go
-- on after the expected lines.
function M.match(expected, actual, prefix)
  local E, A = norm(expected), norm(actual)
  if prefix then E[#E + 1] = "..." end
  local states = { [1] = true }   -- the next actual line, after E[1..i-1]
  for i = 1, #E do
    local nxt, any = {}, false
    if E[i] == "..." then
      local lo = math.huge
      for j in pairs(states) do lo = math.min(lo, j) end
      for j = lo, #A + 1 do nxt[j] = true end
      any = lo <= #A + 1
    else
      local pat = line_pattern(E[i])
      for j in pairs(states) do
        if j <= #A and A[j]:match(pat) then nxt[j + 1], any = true, true end
      end
    end
    if not any then return false, i end
    states = nxt
  end
  if states[#A + 1] then return true end
  return false, #E + 1
end

-- The failure message for output that does not match.
local function mismatch(s, where, expected, actual, i)
  s.fatal = false
  local E = norm(expected)
  local at = E[i] and ("at its line \"" .. E[i] .. "\"") or "it printed more than that"
  return ("%s: the output is not what the README shows (%s)\n--- the README shows:\n%s\n--- it printed:\n%s")
    :format(where, at, expected, actual)
end

-- ---- The session ----

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function spew(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Substitutions for the test machine (see the top of this file).
function M.substitute(text, kind, port)
  text = text:gsub("localhost:3000", "localhost:" .. port)
  if kind == "background" then
    -- each command line that runs the simulator (continuations joined)
    local out, cmd = {}, nil
    for _, l in ipairs(split_lines(text)) do
      cmd = cmd or (l:match("^%s*ghlua%s+sim") and not l:match("^%s*ghlua%s+sim%s+env")) and {} or nil
      if cmd and not l:match("\\%s*$") then
        local body, comment = l:match("^(.-)(%s+#.*)$")
        l = (body or l) .. " --redirect-uri http://localhost:" .. port .. "/oauth/callback" .. (comment or "")
        cmd = nil
      end
      out[#out + 1] = l
    end
    text = table.concat(out, "\n") .. "\n"
  end
  return text
end

-- The environment a block starts from (env -i VAR=... words).
local function base_env(s)
  local env = {
    PATH = s.bin .. ":" .. (os.getenv("PATH") or "/usr/bin:/bin"),
    HOME = s.home, LANG = os.getenv("LANG") or "C.UTF-8",
    BROWSER = "curl -sfL -o /dev/null",
    no_proxy = "127.0.0.1,localhost,::1", NO_PROXY = "127.0.0.1,localhost,::1",
  }
  for _, k in ipairs { "NO_COLOR", "TMPDIR", "LC_ALL", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
    "GHLUA_LUA_DIR" } do
    env[k] = os.getenv(k)
  end
  local words = {}
  for k, v in pairs(env) do words[#words + 1] = k .. "=" .. q(v) end
  table.sort(words)
  return "env -i " .. table.concat(words, " ")
end

-- What a shell runs for a block: the variables and directory left by the
-- blocks before, the block under set -e, then (keep) saves them again.
local DUMP = [[awk 'BEGIN { for (k in ENVIRON) if (k ~ /^[A-Za-z_][A-Za-z0-9_]*$/ && k !~ /^(PWD|OLDPWD|SHLVL|_)$/) { v = ENVIRON[k]; gsub(/\047/, "\047\\\047\047", v); printf "export %s=\047%s\047\n", k, v } }']]

local function runner(s, script, keep)
  local path = s.dir .. "/block-" .. s.next_id() .. ".sh"
  spew(path .. ".body", script)
  local lines = {
    "echo $$ >" .. q(path .. ".pid"),
    ". " .. q(s.envfile),
    "cd " .. q(s.cwd()) .. " || exit 99",
    "set -e",
    ". " .. q(path .. ".body"),
  }
  if keep then
    lines[#lines + 1] = "set +e"
    lines[#lines + 1] = DUMP .. " >" .. q(s.envfile .. ".new") .. " && mv " .. q(s.envfile .. ".new") .. " "
      .. q(s.envfile)
    lines[#lines + 1] = "pwd >" .. q(s.cwdfile)
  end
  spew(path, table.concat(lines, "\n") .. "\n")
  return path
end

-- Run script in the foreground: returns exit code, output (2>&1).
local function run_shell(s, script, shell)
  local path = runner(s, script, true)
  local out = path .. ".out"
  local ok, how, code = os.execute(("%s timeout -k 5 %d %s %s </dev/null >%s 2>&1"):format(s.env, M.TIMEOUT,
    shell or "sh", q(path), q(out)))
  local text = slurp(out) or ""
  if ok then code = 0 elseif how ~= "exit" then code = 128 + (code or 0) end
  return code, text
end

local function check_exit(where, code, out, want)
  if code == -1 then error(("%s: exit status 0, not %d\n%s"):format(where, want, out), 0) end
  if code == 124 then
    error(("%s: did not finish in %d s (a server? mark it <!-- readme-test: background -->)\n%s")
      :format(where, M.TIMEOUT, out), 0)
  end
  if code ~= 0 then error(("%s: exit status %d\n%s"):format(where, code, out), 0) end
end

-- session{src=, port=, name=} -> the session (see the top of this file).
function M.session(opts)
  local s = { name = opts.name or "README.md", port = opts.port, src = opts.src, bg = {} }
  s.dir = os.tmpname()
  os.remove(s.dir)
  assert(sys.mkdir(s.dir, 448))
  s.home, s.bin, s.work = s.dir .. "/home", s.dir .. "/bin", s.dir .. "/work"
  for _, d in ipairs { s.home, s.bin, s.work } do assert(sys.mkdir(d, 448)) end
  local exe = assert(sys.realpath(assert(os.getenv("GHLUA"), "GHLUA must name the binary under test")))
  assert(os.execute("ln -s " .. q(exe) .. " " .. q(s.bin .. "/ghlua")))
  if s.src then
    for _, name in ipairs(sys.listdir(s.src) or {}) do
      if not name:match("^%.") then
        assert(os.execute("ln -s " .. q(s.src .. "/" .. name) .. " " .. q(s.work .. "/" .. name)))
      end
    end
  end
  s.envfile, s.cwdfile = s.dir .. "/env.sh", s.dir .. "/cwd"
  spew(s.envfile, "")
  spew(s.cwdfile, s.work)
  s.env = base_env(s)
  local n = 0
  function s.next_id() n = n + 1 return n end
  -- The directory the blocks so far left the session in.
  function s.cwd() return ((slurp(s.cwdfile) or s.work):gsub("\n$", "")) end

  -- The outputs of the blocks run so far, by block.
  s.outputs = {}

  local function where(b, line) return ("%s:%d"):format(s.name, line or b.line) end

  local function text_of(b)
    return s.port and M.substitute(b.text, b.kind, s.port) or b.text
  end

  local function start_background(b)
    local path = runner(s, text_of(b), false)
    local log, pidfile = path .. ".out", path .. ".pid"
    -- setsid: the block runs in a process group of its own, which s.stop()
    -- signals whole; the runner writes its pid, the group's id
    assert(os.execute(("%s setsid sh %s </dev/null >%s 2>&1 &"):format(s.env, q(path), q(log))))
    local deadline, pid = sys.now() + M.READY_TIMEOUT, nil
    repeat
      pid = math.tointeger(tonumber((slurp(pidfile) or ""):match("^(%d+)\n")))
      if not pid then sys.sleep(0.02) end
    until pid or sys.now() > deadline
    assert(pid, "the background block did not start")
    s.bg[#s.bg + 1] = { pid = pid, log = log, block = b }
    s.outputs[b] = { background = s.bg[#s.bg] }
  end

  local function group_alive(pgid)
    return os.execute("kill -0 -" .. pgid .. " 2>/dev/null") == true
  end

  local function check_output(b)
    local expected = s.port and M.substitute(b.text, "output", s.port) or b.text
    local o = s.outputs[b.of]
    if not o then error(where(b) .. ": the block before it did not run", 0) end
    if o.background then
      local deadline = sys.now() + M.READY_TIMEOUT
      while true do
        local text = slurp(o.background.log) or ""
        local ok, i = M.match(expected, text, true)
        if ok then return end
        if not group_alive(o.background.pid) then
          local msg = mismatch(s, where(b), expected, text, i)
          s.fatal = true
          error(msg .. "\n(the background block at " .. where(b.of) .. " has exited)", 0)
        end
        if sys.now() > deadline then
          error(mismatch(s, where(b), expected, text, i) .. ("\n(waited %d s)"):format(M.READY_TIMEOUT), 0)
        end
        sys.sleep(0.05)
      end
    end
    local ok, i = M.match(expected, o.text)
    if not ok then error(mismatch(s, where(b), expected, o.text, i), 0) end
  end

  local function check_commands(b)
    local bad = {}
    for l in b.text:gmatch("[^\n]+") do
      local word = l:match("^%s*ghlua%s+(%l[%w-]*)")
      if word then
        local code, out = run_shell(s, "ghlua " .. word .. " --help >/dev/null")
        if code ~= 0 then bad[#bad + 1] = ("'ghlua %s --help' exits %d: %s"):format(word, code, out) end
      end
    end
    if #bad > 0 then error(where(b) .. ": " .. table.concat(bad, "\n"), 0) end
  end

  -- Run block b; raises a message naming README.md:LINE when it fails.
  -- s.fatal then says whether later blocks can still run: not after an
  -- output that merely differs from the one shown.
  function s.run(b)
    s.fatal = true
    local kind = b.kind
    if kind == "sh" then
      local code, out = run_shell(s, text_of(b), SHELLS[b.lang])
      s.outputs[b] = { text = out }
      check_exit(where(b), code, out)
    elseif kind == "lua" then
      local path = s.dir .. "/block-" .. s.next_id() .. ".lua"
      spew(path, b.text)
      local code, out = run_shell(s, "ghlua " .. q(path))
      s.outputs[b] = { text = out }
      check_exit(where(b), code, out)
    elseif kind == "console" then
      for _, c in ipairs(b.commands) do
        local cmd = s.port and M.substitute(c.cmd, "console", s.port) or c.cmd
        local expect = s.port and M.substitute(c.expect, "console", s.port) or c.expect
        local code, out = run_shell(s, cmd .. "\n")
        local want = math.tointeger(tonumber(c.cmd:match("#%s*exit status (%d+)%s*$"))) or 0
        if want ~= 0 and code == want then code = 0
        elseif want ~= 0 and code == 0 then code = -1 end
        check_exit(where(b, c.line) .. " ($ " .. c.cmd .. ")", code, out, want)
        local ok, i = M.match(expect, out)
        if not ok then error(mismatch(s, where(b, c.line) .. " ($ " .. c.cmd .. ")", expect, out, i), 0) end
      end
    elseif kind == "background" then
      start_background(b)
    elseif kind == "output" then
      check_output(b)
    elseif kind == "save" then
      spew(s.cwd() .. "/" .. b.arg, b.text)
    elseif kind == "excerpt" then
      local file = slurp((s.src or ".") .. "/" .. b.arg)
      if not file then error(where(b) .. ": " .. b.arg .. " does not exist", 0) end
      if not file:find(b.text, 1, true) then
        error(where(b) .. ": this block is no longer a verbatim part of " .. b.arg, 0)
      end
    elseif kind == "commands" then
      check_commands(b)
    elseif kind ~= "skip" then
      error(where(b) .. ": the test cannot run this block (see the problems reported)", 0)
    end
  end

  -- Stop the background blocks (SIGTERM to each one's process group, then
  -- wait); returns true when all of them ended on it, and the logs.
  function s.stop()
    local clean, logs = true, {}
    for _, g in ipairs(s.bg) do
      if not g.stopped then
        os.execute("kill -TERM -" .. g.pid .. " 2>/dev/null")
        local deadline = sys.now() + 10
        while group_alive(g.pid) and sys.now() < deadline do sys.sleep(0.05) end
        if group_alive(g.pid) then
          clean = false
          os.execute("kill -KILL -" .. g.pid .. " 2>/dev/null")
        end
        g.stopped = true
      end
      logs[#logs + 1] = slurp(g.log) or ""
    end
    return clean, logs
  end

  function s.close()
    local clean = s.stop()
    os.execute("rm -rf " .. q(s.dir))
    return clean
  end

  return s
end

return M
