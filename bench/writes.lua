-- What it costs never to send a write twice (issue 12). libcurl re-sends a
-- request whose kept-alive connection died before any answer; ghl.http
-- refuses that for non-idempotent requests. This times N writes through
-- ghl.http against `ghlua sim` on loopback, cleartext and HTTPS (a P-256
-- certificate made with openssl, trusted through GHLUA_CA_BUNDLE): creates
-- (POST /contacts/ with a JSON body), one after another and 16 at a time,
-- and body-less POSTs (/__fault/echo), each in three ways:
--   today   the body from memory (CURLOPT_POSTFIELDS), and libcurl may
--           re-send it (what idempotent = true still gives)
--   read    creates: the body through CURLOPT_READFUNCTION with a seek
--           callback that cannot rewind (what a POST with a body does now)
--   once    body-less: CURLOPT_PREREQFUNCTION refuses a second attempt
--           (what a body-less POST does now)
--   fresh   a new connection for each request (CURLOPT_FRESH_CONNECT,
--           fresh = true), where libcurl never retries
-- Each run is its own process against a simulator of its own (so no run
-- meets another's contacts), RUNS times per row, interleaved in rounds
-- whose order rotates; the time is taken inside the process after one
-- warm-up request, so start-up is not in it. Prints, per row, the median,
-- min and max time per request, the ratio of medians to today's, and the
-- connections opened per run.
--   build/ghlua bench/writes.lua [N=500] [RUNS=7]
local sys = require "ghl.sys"
local cjson = require "cjson"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- ---- The worker: one process per timed run ----
-- writes.lua --worker URL TOKEN LOCATION create|empty MODE N CONCURRENCY

if arg[1] == "--worker" then
  local http = require "ghl.http"
  local url, token, loc, what, mode = arg[2], arg[3], arg[4], arg[5], arg[6]
  local n, conc = tonumber(arg[7]), tonumber(arg[8])
  local headers = { Authorization = "Bearer " .. token, Version = "2021-07-28" }
  local want = what == "create" and 201 or 200
  local function request(i)
    local r = { method = "POST", url = url .. "/contacts/", headers = headers, timeout = 30,
      json = { locationId = loc, firstName = "Bench", lastName = "Write " .. i, source = "bench/writes.lua",
        tags = { "bench" } } }
    if what == "empty" then r.url, r.json = url .. "/__fault/echo", nil end
    if mode == "today" then r.idempotent = true
    elseif mode == "fresh" then r.idempotent, r.fresh = true, true end
    return r
  end
  local function check(resp, err)
    assert(resp, tostring(err))
    assert(resp.status == want, resp.body)
    return resp.connects
  end
  local warm = assert(http.request { url = url .. "/contacts/", query = { locationId = loc, limit = 1 }, headers = headers })
  assert(warm.status == 200, warm.body)
  local conns, t0 = 0, sys.now()
  if conc == 1 then
    for i = 1, n do conns = conns + check(http.request(request(i))) end
  else
    local sent, done = 0, 0
    while done < n do
      while sent - done < conc and sent < n do
        sent = sent + 1
        assert(http.start(request(sent)))
      end
      for _, t in ipairs(assert(http.perform(1))) do
        conns = conns + check(t:response())
        done = done + 1
      end
    end
  end
  io.write(cjson.encode { secs = sys.now() - t0, conns = conns }, "\n")
  os.exit(0)
end

-- ---- The driver ----

local N = tonumber(arg[1]) or 500
local RUNS = tonumber(arg[2]) or 7
local GHLUA = arg[-1] or "build/ghlua"
local SCRIPT = arg[0]

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. q(dir)))
assert(os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1"
  .. " -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null"):format(q(dir .. "/key.pem"), q(dir .. "/cert.pem"))),
  "openssl could not make the test certificate")

local function start_sim(tls)
  local ready = dir .. "/ready.json"
  os.remove(ready)
  local extra = "--faults " .. (tls and ("--tls --cert %s --key %s"):format(q(dir .. "/cert.pem"), q(dir .. "/key.pem")) or "")
  assert(os.execute(("no_proxy=127.0.0.1 %s sim --port 0 --ready-file %s --quiet --rate-max 100000000 --rate-daily 1000000000 %s"
    .. " > %s 2>&1 &"):format(q(GHLUA), q(ready), extra, q(dir .. "/sim.log"))))
  for _ = 1, 400 do
    local f = io.open(ready)
    local text = f and f:read("a")
    if f then f:close() end
    if text and text ~= "" then return cjson.decode(text) end
    sys.sleep(0.02)
  end
  error("the simulator did not get ready; see " .. dir .. "/sim.log")
end

local function stop_sim(info)
  local pid = math.tointeger(info.pid)
  sys.kill(pid, 15)
  for _ = 1, 250 do
    if not sys.kill(pid, 0) then return end
    sys.sleep(0.02)
  end
  sys.kill(pid, 9)
end

local function run(tls, what, mode, conc)
  local info = start_sim(tls)
  local cmd = ("GHLUA_CA_BUNDLE=%s no_proxy=127.0.0.1 %s %s --worker %s %s %s %s %s %d %d"):format(q(dir .. "/cert.pem"),
    q(GHLUA), q(SCRIPT), q(info.url), q(info.token), q(info.locationId), what, mode, N, conc)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  stop_sim(info)
  assert(ok, "worker failed: " .. cmd .. "\n" .. out)
  return cjson.decode(out)
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local LABEL = { today = "today: body in memory, libcurl may re-send",
  read = "read callback that cannot rewind (a POST with a body now)",
  once = "pre-request callback refuses a 2nd attempt (a body-less POST now)",
  fresh = "fresh connection for each request" }
local WORKLOADS = {
  { "creates, cleartext HTTP/1.1, sequential", false, "create", 1, { "today", "read", "fresh" } },
  { "creates, cleartext HTTP/1.1, 16 at a time", false, "create", 16, { "today", "read", "fresh" } },
  { "creates, HTTPS HTTP/1.1, sequential", true, "create", 1, { "today", "read", "fresh" } },
  { "creates, HTTPS HTTP/1.1, 16 at a time", true, "create", 16, { "today", "read", "fresh" } },
  { "body-less POSTs, cleartext HTTP/1.1, sequential", false, "empty", 1, { "today", "once", "fresh" } },
  { "body-less POSTs, HTTPS HTTP/1.1, sequential", true, "empty", 1, { "today", "once", "fresh" } },
}

print(("%d requests per run, %d runs per row, interleaved; %s"):format(N, RUNS, os.date("!%Y-%m-%d %H:%M UTC")))
for _, w in ipairs(WORKLOADS) do
  local name, tls, what, conc, modes = table.unpack(w)
  local times, conns = {}, {}
  for _, m in ipairs(modes) do
    times[m], conns[m] = {}, {}
    run(tls, what, m, conc)   -- warm-up
  end
  for r = 1, RUNS do
    for k = 0, #modes - 1 do
      local m = modes[(r + k - 1) % #modes + 1]
      local res = run(tls, what, m, conc)
      table.insert(times[m], res.secs / N * 1e6)
      table.insert(conns[m], res.conns)
    end
  end
  print()
  print("#### " .. name)
  print()
  print("| way | median µs/request | min | max | ratio to today | connections opened per run |")
  print("|---|---|---|---|---|---|")
  local base = median(times.today)
  for _, m in ipairs(modes) do
    local t = times[m]
    table.sort(t)
    print(("| %s | %.0f | %.0f | %.0f | %.2f | %.0f |"):format(LABEL[m], median(t), t[1], t[#t], median(t) / base,
      median(conns[m])))
  end
end

os.execute("rm -rf " .. q(dir))
