-- README.md as a reader follows it: every code block runs in order, in a
-- private home, against the simulator the README starts (loopback only, a
-- "browser" that is curl following redirects), and a block that fails, an
-- output that is no longer what the README shows, or an unmarked block the
-- test cannot run fails here (the convention: tests/lua/support/readme.lua,
-- and README.md's Development section). Then the harness itself: it
-- refuses unmarked blocks and catches drift; and `make demo`
-- (examples/demo.sh) runs the README's own commands.
local readme = require "support.readme"
local oauth = require "support.oauth"
local run = require "support.run"

local SRC = os.getenv("GHLUA_SRC") or "."

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("README.md, run as a reader runs it", function()
  local doc = readme.parse(slurp(SRC .. "/README.md"), "README.md")
  local session, failed

  setup(function()
    session = readme.session { src = SRC, port = oauth.free_port() }
  end)

  teardown(function()
    if session then session.close() end
  end)

  it("marks every block the test cannot run", function()
    assert(#doc.problems == 0, "\n" .. table.concat(doc.problems, "\n"))
  end)

  it("has shell, console and Lua blocks to run", function()
    local kinds = {}
    for _, b in ipairs(doc.blocks) do kinds[b.kind or "?"] = (kinds[b.kind or "?"] or 0) + 1 end
    assert.truthy(kinds.sh and kinds.console and kinds.background and kinds.output and kinds.excerpt)
  end)

  for _, b in ipairs(doc.blocks) do
    if b.kind ~= "skip" then
      it(readme.title(b), function()
        if failed then error("not run: " .. failed .. " failed before it", 0) end
        local ok, err = pcall(session.run, b)
        if not ok then
          if session.fatal then failed = ("README.md:%d"):format(b.line) end
          error(err, 0)
        end
      end)
    end
  end

  it("leaves the simulator it started to stop cleanly on SIGTERM", function()
    if failed then error("not run: " .. failed .. " failed before it", 0) end
    local clean, logs = session.stop()
    assert.is_true(clean, table.concat(logs, "\n"))
    assert.matches("ghlua sim: stopped", table.concat(logs, "\n"), 1, true)
  end)
end)

describe("the README test", function()
  local function problems(md)
    return table.concat(readme.parse(md, "T.md").problems, "\n")
  end

  it("refuses an unmarked block it cannot run, and bad markers", function()
    assert.matches("T.md:1: a ```text block the test cannot run", problems("```text\nhi\n```\n"), 1, true)
    assert.matches("T.md:1: a ``` block the test cannot run", problems("```\nghlua app list\n```\n"), 1, true)
    assert.matches("T.md:1: a ```json block", problems("```json\n{}\n```\n"), 1, true)
    assert.matches("skip needs a REASON", problems("<!-- readme-test: skip -->\n```text\nx\n```\n"), 1, true)
    assert.matches("unknown readme-test marker 'skpi'",
      problems("<!-- readme-test: skpi why -->\n```text\nx\n```\n"), 1, true)
    assert.matches("must come right before a code block",
      problems("<!-- readme-test: skip why -->\nprose\n```sh\ntrue\n```\n"), 1, true)
    assert.matches("background block needs an output block",
      problems("<!-- readme-test: background -->\n```sh\nghlua sim\n```\n"), 1, true)
    assert.matches("output must follow a shell or Lua block",
      problems("```console\n$ true\n```\n<!-- readme-test: output -->\n```text\nx\n```\n"), 1, true)
    assert.matches("never closed", problems("```sh\ntrue\n"), 1, true)
    -- marked and runnable blocks are fine, in lists too
    assert.are.equal("", problems(table.concat({
      "<!-- readme-test: skip a real account -->", "", "```text", "x", "```",
      "- step:", "  ```sh", "  true", "  ```", "~~~lua", "print(1)", "~~~",
      "```console", "$ echo a \\", "  b", "a b", "```" }, "\n")))
  end)

  it("matches output with ... for any text and any lines", function()
    assert.is_true(readme.match("a\nb ... d\n...\nz", "a\nb c d\nx\ny\nz\n"))
    assert.is_true(readme.match("a\n...\nz", "a\nz"))
    assert.is_true(readme.match("a   \n\n", "a\n"))
    assert.is_true(readme.match("a", "a\nmore\n", true))
    local ok, at = readme.match("a\nb\nc", "a\nx\nc")
    assert.is_false(ok)
    assert.are.equal(2, at)
    assert.is_false(readme.match("a", "a\nmore\n"))
    assert.is_false(readme.match("1.5", "125"))            -- '.' is literal
    assert.is_false(readme.match("a%d", "a1"))             -- so is '%'
  end)

  it("substitutes the redirect port, and registers it on a background ghlua sim", function()
    assert.are.equal("curl http://localhost:4567/x\n",
      readme.substitute("curl http://localhost:3000/x\n", "sh", 4567))
    assert.are.equal("ghlua sim --contacts 2 --redirect-uri http://localhost:4567/oauth/callback   # c\n",
      readme.substitute("ghlua sim --contacts 2   # c\n", "background", 4567))
    assert.are.equal("ghlua sim \\\n  --quiet --redirect-uri http://localhost:4567/oauth/callback\n",
      readme.substitute("ghlua sim \\\n  --quiet\n", "background", 4567))
  end)

  describe("catches drift", function()
    local s
    setup(function() s = readme.session { src = SRC, port = oauth.free_port(), name = "T.md" } end)
    teardown(function() s.close() end)

    local function first(md) return readme.parse(md, "T.md").blocks[1] end
    local function fails(md, text)
      local ok, err = pcall(s.run, first(md))
      assert.is_false(ok)
      assert.matches(text, err, 1, true)
    end

    it("a flag that no longer exists", function()
      fails("```sh\nghlua api GET /contacts/ --no-such-flag\n```\n", "T.md:1: exit status 2")
      fails("```sh\nghlua api GET /contacts/ --no-such-flag\n```\n", "unknown option '--no-such-flag'")
    end)

    it("an output that is not what the README shows", function()
      fails("```console\n$ ghlua -e 'print(6 * 7)'\n41\n```\n", "T.md:2 ($ ghlua -e 'print(6 * 7)'): the output is not")
      s.run(first("```console\n$ ghlua -e 'print(6 * 7)'\n42\n```\n"))
    end)

    it("an exit status other than the one shown", function()
      s.run(first("```console\n$ ghlua app   # exit status 2\nghlua: missing app subcommand; usage: ...\n```\n"))
      fails("```console\n$ ghlua app   # exit status 1\n...\n```\n", "T.md:2 ($ ghlua app   # exit status 1): exit status 2")
      fails("```console\n$ ghlua -e 'print(1)'   # exit status 2\n1\n```\n", "exit status 0, not 2")
    end)

    it("a Lua block that errors", function()
      fails("```lua\nlocal x = nil\nprint(x.y)\n```\n", "T.md:1: exit status 1")
    end)

    it("a command that no longer exists in a commands block", function()
      local md = "<!-- readme-test: commands -->\n```\nghlua app ...   apps\nghlua nosuchcmd  gone\n```\n"
      fails(md, "'ghlua nosuchcmd --help' exits")
      s.run(first("<!-- readme-test: commands -->\n```\nghlua app ...   apps\nghlua -e CODE\n```\n"))
    end)

    it("an excerpt that is no longer in its file", function()
      fails("<!-- readme-test: excerpt examples/first.lua -->\n```lua\nprint('not there')\n```\n",
        "no longer a verbatim part of examples/first.lua")
      fails("<!-- readme-test: excerpt examples/nope.lua -->\n```lua\nx()\n```\n", "examples/nope.lua does not exist")
    end)

    it("a block that never ends unless marked background", function()
      local old = readme.TIMEOUT
      readme.TIMEOUT = 1
      local ok, err = pcall(s.run, first("```sh\nsleep 30\n```\n"))
      readme.TIMEOUT = old
      assert.is_false(ok)
      assert.matches("did not finish in 1 s", err, 1, true)
    end)

    it("carries variables and the directory from block to block, as one terminal", function()
      s.run(first("```sh\nexport GREETING='it is'\nmkdir -p sub && cd sub\n```\n"))
      s.run(first("```console\n$ echo \"$GREETING\" && basename \"$PWD\"\nit is\nsub\n```\n"))
      s.run(first("```sh\ncd ..\n```\n"))
    end)

    it("runs in a private home, with none of the caller's variables but the basics", function()
      assert.truthy(os.getenv("GHLUA_SRC") and os.getenv("GHLUA"))
      s.run(first("```console\n$ echo \"$HOME|$GHLUA_SRC|$GHLUA|$BROWSER\"\n.../home|||curl -sfL -o /dev/null\n```\n"))
    end)
  end)
end)

describe("make demo (examples/demo.sh)", function()
  it("runs the README's own commands", function()
    local text = slurp(SRC .. "/README.md"):gsub("%s*\\\n%s*", " ")   -- continued lines joined
    local demo = slurp(SRC .. "/examples/demo.sh")
    local n = 0
    for cmd in demo:gmatch("\nstep '([^']+)'") do
      n = n + 1
      assert(text:find(cmd, 1, true), "examples/demo.sh runs '" .. cmd .. "', which README.md does not show")
    end
    assert.is_true(n >= 4)
  end)

  it("runs against the simulator", function()
    local r = run.sh("sh " .. run.quote(SRC .. "/examples/demo.sh") .. " " .. run.quote(os.getenv("GHLUA")),
      { env = { GHLUA_DEMO_PORT = tostring(oauth.free_port()) } })
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.matches("$ ghlua auth login --app myapp", r.out, 1, true)
    assert.matches("search: 26 contacts in the location", r.out, 1, true)
  end)
end)
