-- ghl.csv over libcsv: RFC 4180 quoting, embedded newlines, line numbers
-- of bad rows, chunk boundaries, writing and reading back, and the
-- sandbox's path limits.
local csv = require "ghl.csv"
local native = require "ghl._csv"
local run = require "support.run"
local cjson_null = require("cjson").null

local function all(text, o)
  local rows, lines = {}, {}
  for row, line in csv.read(text, o) do
    rows[#rows + 1] = row
    lines[#lines + 1] = line
  end
  return rows, lines
end

local function err_of(text, o)
  local ok, e = pcall(all, text, o)
  assert.is_false(ok, "expected an error")
  return e
end

local dir
setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. run.quote(dir .. "/sub")))
end)
teardown(function() os.execute("rm -rf " .. run.quote(dir)) end)

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

describe("ghl.csv.read", function()
  it("reads RFC 4180 quoting: delimiters, doubled quotes and newlines inside fields", function()
    local rows, lines = all('name,note,n\n"Smith, Ann","she said ""hi""\nthen left",1\nBob,,2\n')
    assert.are.same({ { name = "Smith, Ann", note = 'she said "hi"\nthen left', n = "1" },
                      { name = "Bob", note = "", n = "2" } }, rows)
    assert.are.same({ 2, 4 }, lines)
  end)

  it("handles CRLF, a lone CR, blank lines, a missing final newline and a byte order mark", function()
    local rows, lines = all('\239\187\191a,b\r\n1,"x\r\ny"\r\n\r\n2,z\r3,w')
    assert.are.same({ { a = "1", b = "x\r\ny" }, { a = "2", b = "z" }, { a = "3", b = "w" } }, rows)
    assert.are.same({ 2, 5, 6 }, lines)
  end)

  it("gives arrays without a header, and takes another delimiter", function()
    assert.are.same({ { "a", "b;c" }, { "1", "" } }, all('a;"b;c"\n1;\n', { header = false, delim = ";" }))
    assert.are.same({ { "x" } }, all("x", { header = false, text = true }))
  end)

  it("gives the same rows and lines whatever the chunk boundaries", function()
    local path = dir .. "/chunks.csv"
    local text = 'id,text\r\n1,"multi\r\nline, with ""quotes"""\r\n\r\n2,plain\r\n3,"a\nb\nc"\n4,end'
    write(path, text)
    local want_rows, want_lines = all(text)
    local saved = csv.CHUNK
    finally(function() csv.CHUNK = saved end)
    for size = 1, 9 do
      csv.CHUNK = size
      local rows, lines = all(path)
      assert.are.same(want_rows, rows, "chunk size " .. size)
      assert.are.same(want_lines, lines, "chunk size " .. size)
    end
    assert.are.same({ 2, 5, 6, 9 }, want_lines)
  end)

  it("reports the line of a malformed row", function()
    local e = err_of('a,b\n1,2\n3,"4"x\n5,6\n')
    assert.are.same({ "csv", 3 }, { e.kind, e.line })
    assert.matches("^line 3:", e.message)
    e = err_of('a,b\n1,2\n3,4"5\n')
    assert.are.equal(3, e.line)
    e = err_of('a,b\n1,"two\nlines"\n3,"never closed\n4,4\n')
    assert.are.equal(4, e.line)
    assert.matches("unclosed quote", e.message)
  end)

  it("reports the line of a row with the wrong number of fields, unless ragged", function()
    local e = err_of('a,b,c\n1,2,3\n\n4,5\n')
    assert.are.same({ "csv", 4 }, { e.kind, e.line })
    assert.matches("line 4: 2 fields, but the header has 3", e.message)
    assert.are.same({ { a = "4", b = "5" } }, all("a,b,c\n4,5\n", { ragged = true }))
  end)

  it("names the file in errors and the file it cannot open", function()
    write(dir .. "/bad.csv", 'a\n"x\n')
    local e = err_of(dir .. "/bad.csv")
    assert.matches("bad%.csv: line 2", e.message)
    e = err_of(dir .. "/missing.csv")
    assert.are.equal("io", e.kind)
  end)

  it("closes the file when a loop is left early", function()
    write(dir .. "/early.csv", "a\n1\n2\n3\n")
    local fds = "/proc/" .. require("ghl.sys").getpid() .. "/fd"
    -- how many of this process's descriptors point at early.csv
    local function open_on_file()
      local p = io.popen("ls -l " .. fds .. " 2>/dev/null | grep -c '/early.csv$'")
      local n = tonumber(p:read("a"))
      p:close()
      return n
    end
    collectgarbage("stop")
    finally(function() collectgarbage("restart") end)
    assert.are.equal(0, open_on_file())
    for row in csv.read(dir .. "/early.csv") do
      assert.are.equal(1, open_on_file())
      if row.a == "1" then break end
    end
    assert.are.equal(0, open_on_file())
  end)

  it("parses everything at once with parse", function()
    assert.are.same({ { k = "v" } }, csv.parse("k\nv"))
  end)
end)

describe("ghl.csv.write", function()
  it("quotes what needs quoting and reads back the same values", function()
    local rows = {
      { id = 1, name = "Smith, Ann", note = 'said "hi"', multi = "a\nb", pad = " x ", empty = nil, uni = "Müller ✓" },
      { id = 2.0, name = "plain", note = "", multi = "c\r\nd", pad = "y", empty = false, uni = "" },
    }
    local cols = { "id", "name", "note", "multi", "pad", "empty", "uni" }
    local path = dir .. "/out.csv"
    assert.are.equal(2, csv.write(path, rows, { columns = cols }))
    local text = run.slurp(path)
    assert.are.equal('id,name,note,multi,pad,empty,uni\n1,"Smith, Ann","said ""hi""","a\nb"," x ",,Müller ✓\n', text:sub(1, (text:find("\n2,", 1, true))))
    local back = all(path)
    assert.are.same({ id = "1", name = "Smith, Ann", note = 'said "hi"', multi = "a\nb", pad = " x ", empty = "",
                      uni = "Müller ✓" }, back[1])
    assert.are.same({ "2", "c\r\nd", "false" }, { back[2].id, back[2].multi, back[2].empty })
  end)

  it("writes arrays, sorted keys by default, tables as JSON, and another end of line", function()
    assert.are.equal("1,,x\r\n", csv.encode({ { 1, nil, "x" } }, { eol = "\r\n" }))
    assert.are.equal("a,b\n1,\"[1,2]\"\n", csv.encode({ { b = { 1, 2 }, a = 1 } }))
    assert.are.equal("", csv.encode({}))
  end)

  -- found by tests/fuzz (target csv: what csv.encode writes reads back)
  it("writes what reads back: one empty field, tabs around a field, a leading byte order mark", function()
    local rows = { { "" }, { "r" }, { "\t", "x\t" } }
    local text = csv.encode(rows)
    assert.are.equal('""\nr\n"\t","x\t"\n', text)
    assert.are.same(rows, csv.parse(text, { header = false }))
    assert.are.equal('n\n""\n', csv.encode({ { n = cjson_null } }, { columns = { "n" } }))
    local bom = "\239\187\191"
    local two = csv.parse(bom .. bom .. "a,b\n", { header = false })
    assert.are.same({ { bom .. "a", "b" } }, two)
    assert.are.equal('"' .. bom .. 'a",b\n', csv.encode(two))
    assert.are.same(two, csv.parse(csv.encode(two), { header = false }))
  end)
end)

describe("the native parser", function()
  it("refuses use after close, and bad options", function()
    local p = native.parser()
    p:close()
    assert.has_error(function() p:feed("a") end, "attempt to use a closed CSV parser")
    assert.has_error(function() native.parser { delim = ";;" } end)
    local q <close> = native.parser { strict = false }
    local rows = q:feed('a"b,c\n')
    assert.are.same({ { 'a"b', "c" } }, rows)
  end)
end)

