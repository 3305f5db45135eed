-- ghl.util: atomic private writes, whole-file reads, shell quoting,
-- ISO 8601 timestamps, durations both ways, hex.
local util = require "ghl.util"
local sys = require "ghl.sys"
local run = require "support.run"

local dir
setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(sys.mkdir(dir, tonumber("700", 8)))
end)
teardown(function() os.execute("rm -rf " .. run.quote(dir)) end)

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

describe("util.write_atomic", function()
  it("writes the file with mode 0600, also over a file that was 0644", function()
    local p = dir .. "/new.json"
    assert.is_true(util.write_atomic(p, "{}\n"))
    assert.are.equal("{}\n", read(p))
    assert.are.equal(tonumber("600", 8), sys.stat(p).mode)
    local q = dir .. "/public.json"
    write(q, "old")
    assert(sys.chmod(q, tonumber("644", 8)))
    assert.is_true(util.write_atomic(q, "new"))
    assert.are.equal(tonumber("600", 8), sys.stat(q).mode)
    assert.are.equal("new", read(q))
    assert.is_nil(sys.stat(q .. ".tmp"))
  end)

  it("takes another mode when given one", function()
    local p = dir .. "/mode.txt"
    assert.is_true(util.write_atomic(p, "x", tonumber("640", 8)))
    assert.are.equal(tonumber("640", 8), sys.stat(p).mode)
  end)

  it("replaces the file whole: a reader of the old file still reads all of it", function()
    local p = dir .. "/replace.txt"
    local old = ("old line\n"):rep(10000)
    write(p, old)
    local reader = assert(io.open(p, "rb"))
    assert.is_true(util.write_atomic(p, ("new line\n"):rep(20000)))
    assert.are.equal(old, reader:read("a"))   -- never truncated in place
    reader:close()
    assert.are.equal(("new line\n"):rep(20000), read(p))
  end)

  it("leaves the old file and no temporary one when the rename fails", function()
    local p = dir .. "/busy"
    assert(sys.mkdir(p))
    write(p .. "/inside", "kept")
    local ok, err = util.write_atomic(p, "data")
    assert.is_nil(ok)
    assert.is_string(err)
    assert.are.equal("dir", sys.stat(p).type)
    assert.are.equal("kept", read(p .. "/inside"))
    assert.is_nil(sys.stat(p .. ".tmp"))
  end)

  it("never writes through a symbolic link planted as the temporary file", function()
    local victim = dir .. "/victim"
    write(victim, "untouched")
    local p = dir .. "/target"
    assert(os.execute(("ln -s %s %s"):format(run.quote(victim), run.quote(p .. ".tmp"))))
    assert.is_true(util.write_atomic(p, "secret"))
    assert.are.equal("untouched", read(victim))
    assert.are.equal("secret", read(p))
  end)

  it("says why when the directory does not exist", function()
    local ok, err = util.write_atomic(dir .. "/missing/x.json", "{}")
    assert.is_nil(ok)
    assert.matches("missing.*No such file or directory", err)
  end)
end)

describe("util.slurp", function()
  it("reads a whole file, bytes as they are", function()
    local p = dir .. "/bytes"
    local data = "a\0b\r\n\255" .. ("z"):rep(100000)
    write(p, data)
    assert.are.equal(data, util.slurp(p))
  end)

  it("returns nil and the reason for a missing file or a directory", function()
    local text, err = util.slurp(dir .. "/nope")
    assert.is_nil(text)
    assert.matches("nope: No such file or directory", err)
    text, err = util.slurp(dir)
    assert.is_nil(text)
    assert.is_string(err)
  end)
end)

describe("util.shell_quote", function()
  it("leaves plain words alone and quotes the rest so sh reads them back", function()
    assert.are.equal("/tmp/a-b_c.lua", util.shell_quote("/tmp/a-b_c.lua"))
    assert.are.equal("'/tmp/a b'", util.shell_quote("/tmp/a b"))
    assert.are.equal("'x'", util.shell_quote("x", true))
    for _, s in ipairs { "it's", "$HOME `id` \"q\"", "a\nb", "", "--flag=v;rm" } do
      local p = io.popen("printf '%s' " .. util.shell_quote(s))
      assert.are.equal(s, p:read("a"))
      p:close()
    end
  end)
end)

describe("util timestamps", function()
  it("formats epoch seconds as ISO 8601 UTC, the fraction dropped", function()
    assert.are.equal("1970-01-01T00:00:00Z", util.iso8601(0))
    assert.are.equal("2024-05-01T12:00:00Z", util.iso8601(1714564800.9))
    assert.are.equal("2024-05-01T12:00:00+00:00", util.iso8601(1714564800, "+00:00"))
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", util.iso8601())
  end)

  it("formats epoch milliseconds with three digits of fraction", function()
    assert.are.equal("2024-05-01T12:00:00.123Z", util.iso8601_ms(1714564800123))
    assert.are.equal("2024-05-01T12:00:00.005Z", util.iso8601_ms(1714564800005))
    assert.are.equal("1970-01-01T00:00:00.000Z", util.iso8601_ms(0))
  end)
end)

describe("util durations", function()
  it("shows the two largest units", function()
    assert.are.equal("0s", util.duration(0))
    assert.are.equal("45s", util.duration(45.9))
    assert.are.equal("1m 30s", util.duration(90))
    assert.are.equal("1m 30s", util.duration(-90))
    assert.are.equal("5h 2m", util.duration(5 * 3600 + 2 * 60 + 7))
    assert.are.equal("3d 4h", util.duration(3 * 86400 + 4 * 3600 + 59))
  end)

  it("reads back what it shows", function()
    for _, secs in ipairs { 0, 1, 59, 60, 90, 3599, 3600, 3660, 86340, 86400, 90000, 30 * 86400 } do
      assert.are.equal(secs, util.parse_duration(util.duration(secs)), secs)
    end
    assert.are.equal(5430, util.parse_duration("1h30m30s"))
    assert.are.equal(90, util.parse_duration("90s"))
  end)

  it("refuses what is not a duration, naming the forms it takes", function()
    for _, bad in ipairs { "", "soon", "10", "5x", "30s 1m", "1m1m", "-5s", "1.5h" } do
      local n, err = util.parse_duration(bad)
      assert.is_nil(n, bad)
      assert.matches("not a duration", err)
    end
  end)
end)

describe("util.hex", function()
  it("writes two lowercase digits a byte", function()
    assert.are.equal("", util.hex(""))
    assert.are.equal("00ff10ab", util.hex("\0\255\16\171"))
    assert.are.equal(64, #util.hex(assert(sys.random_bytes(32))))
  end)
end)

describe("util.urlencode and util.urldecode", function()
  it("percent-encodes every byte but the unreserved ones, in uppercase hex", function()
    assert.are.equal("AZaz09-._~", util.urlencode("AZaz09-._~"))
    assert.are.equal("a%20b%2Fc%3F%26%3D%25%2B", util.urlencode("a b/c?&=%+"))
    assert.are.equal("%C3%A9%00%FF", util.urlencode("\195\169\0\255"))
    assert.are.equal("42", util.urlencode(42))
  end)

  it("decodes what it encodes, and '+' as a space", function()
    local s = "x y/\0\255é&=+"
    assert.are.equal(s, util.urldecode(util.urlencode(s)))
    assert.are.equal("a b c", util.urldecode("a+b%20c"))
  end)
end)

describe("util.redact", function()
  it("shows a secret as … and its last four characters, short ones as … alone", function()
    assert.are.equal("…wxyz", util.redact("abcdefghijklmnopqrstuvwxyz"))
    assert.are.equal("…", util.redact("eleven-byte"))
    assert.are.equal("…cret", util.redact("short-secret"))   -- from 12 bytes on
    assert.are.equal("…", util.redact(""))
  end)
end)

describe("ghl.sys failures", function()
  it("return nil, an error with the reason, and the errno's name", function()
    local ok, err, code = sys.stat(dir .. "/absent")
    assert.is_nil(ok)
    assert.are.equal("ENOENT", code)
    assert.are.equal("ENOENT", err.code)
    assert.are.equal("os", err.kind)
    assert.are.equal(dir .. "/absent: No such file or directory", err.message)
    ok, err, code = sys.mkdir(dir .. "/absent/sub")
    assert.is_nil(ok)
    assert.are.equal("ENOENT", code)
    assert.matches("^mkdir .*/absent/sub: No such file or directory$", err.message)
    local file = dir .. "/plain"
    write(file, "x")
    ok, err, code = sys.listdir(file)
    assert.is_nil(ok)
    assert.are.equal("ENOTDIR", code)
    ok, err, code = sys.open(dir .. "/absent", "x", "r")
    assert.is_nil(ok)
    assert.are.equal("io", err.kind)
    assert.are.equal("ENOENT", code)
  end)
end)
