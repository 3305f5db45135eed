-- A smoke run of the API-client benchmark (bench/api.lua --quick): nginx on
-- loopback, the C references, a few requests per workload, and the
-- throttle workload with a tiny limit (20 creates at 10 per second). It
-- checks that the harness runs end to end and produces its numbers, not how
-- fast anything is: timings on a shared test machine mean nothing, but a
-- row that is missing, a workload that sent the wrong number of requests or
-- a 429 that reached the caller are bugs.
local cjson = require "cjson"
local run = require "support.run"

local SRC = os.getenv("GHLUA_SRC") or "."
local BUILD = os.getenv("GHLUA_BUILD") or (SRC .. "/build")

describe("bench/api.lua --quick", function()
  local res, md

  setup(function()
    local json = os.tmpname()
    local r = run.sh(table.concat({ "cd", run.quote(SRC), "&&", run.quote(os.getenv("GHLUA")), "bench/api.lua",
      "--quick", "--json", run.quote(json), "--ref-dir", run.quote(BUILD .. "/bench-smoke") }, " "))
    assert(r.code == 0, "bench/api.lua --quick failed (exit " .. tostring(r.code) .. "):\n" .. r.err .. r.out)
    md = r.out
    res = cjson.decode(run.slurp(json))
    os.remove(json)
  end)

  local function positive(x) return type(x) == "number" and x > 0 and x < math.huge end

  local function check_rows(list, requests, roles)
    local seen = {}
    for _, row in ipairs(list) do
      seen[row.role] = true
      assert.is_true(positive(row.median), row.name .. ": median")
      assert.is_true(row.min <= row.median and row.median <= row.max, row.name .. ": min <= median <= max")
      assert.is_true(positive(row.ratio), row.name .. ": ratio")
      assert.is_number(row.server.cpu_share, row.name .. ": server CPU")
      if requests then
        assert.are.equal(requests, row.server.requests_per_run, row.name .. ": requests per run")
        assert.is_true(row.server.conns_per_run >= 1, row.name .. ": connections per run")
      end
    end
    for _, role in ipairs(roles) do assert.is_true(seen[role], "no row for " .. role) end
  end

  it("times every workload against its reference, with ratios", function()
    local cfg, h1 = res.config, res.h1
    assert.is_true(res.client, "ghl.client rows were skipped")
    check_rows(h1.w1, nil, { "lua", "ghlua_empty", "ref", "ghlua", "curl_1ca", "curl_capath" })
    for _, row in ipairs(h1.w1) do
      if row.role == "ref" or row.role == "ghlua" then
        assert.are.equal(1, row.server.requests_per_run, row.name)
      end
    end
    check_rows(h1.w2, cfg.requests, { "ref", "ref_capath", "ghlua", "ghlua_raw", "raw" })
    check_rows(h1.w3, cfg.requests, { "ref", "ref_capath", "ghlua", "stream", "parallel", "raw" })
    check_rows(h1.w4, cfg.pages, { "ref", "ghlua", "raw" })
    for _, w in ipairs { h1.w2, h1.w3, h1.w4 } do
      for _, row in ipairs(w) do
        if row.role == "ref" then assert.are.equal(1, row.ratio) end
      end
    end
  end)

  it("measures peak RSS for workloads 2 and 3", function()
    local roles = {}
    for _, r in ipairs(res.h1.w5) do
      roles[r.role] = true
      assert.is_true(positive(r.median), r.name)
      assert.is_true(r.median > 1024, r.name .. ": more than 1 MiB (the value is in KiB)")
    end
    for _, role in ipairs { "ref2", "ref3", "ghlua2", "ghlua3", "ghlua3s" } do assert.is_true(roles[role], role) end
  end)

  it("runs the bulk job under the simulator's limit without a 429 reaching the caller", function()
    local t = res.throttle
    assert.are.equal(20, t.n)
    assert.are.equal(20, t.ok)
    assert.are.equal(0, t.seen_429)
    assert.are.equal(0, t.sent_429)       -- the first request learns the limit before the burst
    assert.are.equal(0, t.other_errors)
    assert.are.equal(1, t.t_min)          -- 20 at 10 per 1,000 ms: the second window opens after 1 s
    assert.is_true(t.seconds >= t.t_min, "finished faster than the limit allows: " .. t.seconds)
    assert.is_true(positive(t.ratio))
    assert.is_true(t.server_requests >= 20)
  end)

  it("prints the Markdown tables with targets", function()
    for _, heading in ipairs { "1. Cold start", "2. Sequential", "3. Concurrent", "4. Decoding", "5. Peak RSS",
                               "6. Throttle" } do
      assert.matches(heading, md, 1, true)
    end
    assert.matches("target ≤ 1.15", md, 1, true)
    assert.matches("| 429s seen by the caller | 0 |", md, 1, true)
  end)
end)

-- A smoke run of the agency fan-out benchmark (bench/fanout.lua --quick):
-- 20 locations under a limit of 10 requests per 500 ms, one run. It checks
-- that the harness runs end to end (it asserts, per run, 0 failed, no 429
-- in the simulator's counters, one mint per location and the pages) and
-- prints the floor with its formula; not how fast anything is.
describe("bench/fanout.lua --quick", function()
  it("fans out, checks every run and prints the floor and the ratio", function()
    local json = os.tmpname()
    local r = run.sh(table.concat({ "cd", run.quote(SRC), "&&", run.quote(os.getenv("GHLUA")), "bench/fanout.lua",
      "--quick", "--json", run.quote(json) }, " "))
    assert(r.code == 0, "bench/fanout.lua --quick failed (exit " .. tostring(r.code) .. "):\n" .. r.err .. r.out)
    local res = cjson.decode(run.slurp(json))
    os.remove(json)
    assert.are.same({ 20, 2, 10, 0.5, 1 }, { res.config.locations, res.config.calls, res.config.rate_max,
                                             res.config.interval_s, res.config.pages })
    -- (ceil((1 + 20) / 10) - 1) * 0.5 s: the Company bucket takes three windows
    assert.are.equal(1, res.floor)
    assert.are.equal(1, #res.rows)
    local row = res.rows[1]
    assert.is_true(row.median > 0 and row.min <= row.median and row.median <= row.max)
    assert.is_true(row.ratio > 0)
    assert.matches("floor = (ceil((P + L) / M) - 1) * I + (ceil(N / M) - 1) * I", r.out, 1, true)
    assert.matches("| delay per request | wall, median (min, max) | floor | ratio to floor |", r.out, 1, true)
  end)
end)

-- A smoke run of the paired table of issue 17 (bench/api.lua --table
-- --quick --runs 1): every row has the C reference, the curl CLI and
-- ghlua (and, where ghlua decodes, the C reference that decodes too), each
-- program sent the requests it should, and the ratios and the peak RSS
-- rows are there. Not how fast anything is.
describe("bench/api.lua --table --quick", function()
  it("runs every row side by side with the C reference and the curl CLI", function()
    local json = os.tmpname()
    local r = run.sh(table.concat({ "cd", run.quote(SRC), "&&", run.quote(os.getenv("GHLUA")), "bench/api.lua",
      "--table", "--quick", "--runs", "1", "--json", run.quote(json), "--ref-dir", run.quote(BUILD .. "/bench-smoke") },
      " "))
    assert(r.code == 0, "bench/api.lua --table failed (exit " .. tostring(r.code) .. "):\n" .. r.err .. r.out)
    local res = cjson.decode(run.slurp(json))
    os.remove(json)
    local t, cfg = res.table, res.config
    local want = { cold = 1, seq = cfg.requests, conc = cfg.requests, conc_http = cfg.requests,
                   seq_http_layer = cfg.requests, pages = cfg.pages }
    local seen = {}
    for _, row in ipairs(t.rows) do
      seen[row.key] = true
      for role, p in pairs(row.programs) do
        assert.is_true(p.median > 0 and p.ratio > 0, row.key .. " " .. role)
        -- every program sends the row's requests (the curl CLI and the
        -- references too), so no ratio compares different work
        assert.are.equal(want[row.key], p.requests_per_run, row.key .. " " .. role .. ": requests per run")
      end
      assert.are.equal(1, row.programs.ref.ratio)
      assert.is_table(row.programs.ghlua, row.key)
      if row.key ~= "seq_http_layer" then assert.is_table(row.programs.curl, row.key) end
      -- the rows where ghlua decodes also run a reference that decodes
      if row.key ~= "cold" then
        assert.is_table(row.programs.ref_dec, row.key)
        assert.is_true(row.programs.ghlua.dec_ratio > 0, row.key)
      end
    end
    for key in pairs(want) do assert.is_true(seen[key], "no row " .. key) end
    local rss = {}
    for _, x in ipairs(t.rss) do rss[x.role] = x.median end
    for _, role in ipairs { "ref", "curl", "ghlua", "ghlua_stream", "ghlua_keep" } do
      assert.is_true((rss[role] or 0) > 1024, "peak RSS of " .. role)
    end
    assert.matches("| workload | C reference, ms | curl CLI | ghlua | ghlua against C + lua-cjson |", r.out, 1, true)
  end)
end)
