-- API-client benchmark: ghlua against libcurl used directly from C, the curl
-- command-line tool and the official Node SDK, as ratios measured in the
-- same run, on a stand-in server that is not the bottleneck (nginx on
-- loopback HTTPS, one worker, static contact JSON; its own CPU use is read
-- from /proc and reported), plus the throttle against `ghlua sim`.
--   build/ghlua bench/api.lua [--quick] [--runs N] [--requests N]
--     [--pages N] [--concurrency N] [--proto h1,h2] [--node|--no-node]
--     [--throttle N] [--throttle-max N] [--throttle-interval-ms N]
--     [--json FILE] [--ref-dir DIR] [--serve]
--   build/ghlua bench/api.lua --report FILE    (the Markdown again, from --json)
--   build/ghlua bench/api.lua --table [--runs 7] [--base OTHER_GHLUA] [--instructions]
--     the rows of issue 17 in one run: each workload's programs (the C
--     reference, the curl CLI, ghlua, and with --base another ghlua build,
--     say main's) run one after the other in 7 rounds, so that load from
--     elsewhere hits them alike; ratios of medians against the reference;
--     peak RSS; with --instructions each program's instruction count once,
--     under valgrind --tool=callgrind (the hardware counters of perf are
--     not available on a virtual machine; callgrind counts are exact and
--     do not move with the machine's load).
-- Workloads: 1 cold start, 2 sequential GETs over keep-alive, 3 concurrent
-- GETs, 4 fetch-and-decode of a 100-contact page, 5 peak RSS of 2 and 3,
-- 6 a bulk job of creates against the simulator's rate limit. Timings come
-- from hyperfine (-N, no shell), peak RSS from /usr/bin/time. Prints
-- Markdown for bench/RESULTS.md; --json writes the numbers too (the smoke
-- test reads them). --serve only starts nginx, prints the environment
-- the workloads use and waits for Ctrl-C (for profiling by hand). Needs nginx, hyperfine, /usr/bin/time, openssl and a C
-- compiler (`sh .ci/deps bench`); any failure raises, after the servers it
-- started are stopped and its temporary directory is removed.
local sys = require "ghl.sys"
local http = require "ghl.http"
local cjson = require "cjson"
local args = require "ghl.cli.args"

local PWD = io.popen("pwd"):read("l")
local function abs(p) return p:sub(1, 1) == "/" and p or PWD .. "/" .. p end
local GHLUA = arg[-1]:find("/") and abs(arg[-1]) or io.popen("command -v " .. arg[-1]):read("l")
local USAGE = "ghlua bench/api.lua [--quick] [--runs N] [--requests N] [--pages N] [--concurrency N]"
  .. " [--proto h1,h2] [--node|--no-node] [--throttle N] [--throttle-max N] [--throttle-interval-ms N]"
  .. " [--json FILE] [--ref-dir DIR] [--serve] | --report FILE"
  .. " | --table [--runs N] [--base GHLUA] [--instructions] [--json FILE]"
local opts = args.parse(arg, {
  quick = "flag", runs = "number", requests = "number", pages = "number", concurrency = "number",
  proto = "string", node = "flag", ["no-node"] = "flag", throttle = "number", ["throttle-max"] = "number",
  ["throttle-interval-ms"] = "number", json = "string", ["ref-dir"] = "string", serve = "flag",
  report = "string", table = "flag", base = "string", instructions = "flag",
}, USAGE)

local QUICK = opts.quick
local CFG = {
  runs = opts.runs or (QUICK and 2 or 10),            -- timed runs of workloads 2-4
  cold_runs = QUICK and 3 or 40,                       -- timed runs of workload 1
  rss_runs = QUICK and 1 or 3,
  requests = opts.requests or (QUICK and 20 or 1000),
  pages = opts.pages or (QUICK and 3 or 200),
  concurrency = opts.concurrency or (QUICK and 4 or 16),
  protos = {},
  throttle = opts.throttle or (QUICK and 20 or 1000),
  throttle_max = opts["throttle-max"] or (QUICK and 10 or 100),
  throttle_interval_ms = opts["throttle-interval-ms"] or (QUICK and 1000 or 10000),
}
for p in (opts.proto or (QUICK and "h1" or "h1,h2,http")):gmatch("[^,]+") do
  assert(p == "h1" or p == "h2" or p == "http", "--proto takes a list of h1, h2, http")
  CFG.protos[#CFG.protos + 1] = p
end

local ROOT = abs(debug.getinfo(1, "S").source:match("^@(.*)/bench/[^/]*$") or ".")
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function slurp(p) local f = io.open(p, "rb") if not f then return nil end local s = f:read("a") f:close() return s end
local function spit(p, s) local f = assert(io.open(p, "wb")) f:write(s) f:close() end
local function sh(cmd, what)
  local ok, _, code = os.execute(cmd)
  if not ok then error(("%s failed (exit %s): %s"):format(what or "command", tostring(code), cmd), 2) end
end
local function capture(cmd)
  local f = assert(io.popen(cmd))
  local s = f:read("a")
  f:close()
  return (s:gsub("%s+$", ""))
end
local function have(prog) return os.execute("command -v " .. q(prog) .. " >/dev/null 2>&1") end

local NODE_DIR = ROOT .. "/bench/node"
local USE_NODE, HAS_CLIENT, DIR

-- The tools, the Node SDK (when wanted), the client, a scratch directory.
local function prepare()
  for _, prog in ipairs { "nginx", "hyperfine", "openssl", "cc", "make", "curl", "lua5.4" } do
    if not have(prog) then error("bench/api.lua needs " .. prog .. ": run `sh .ci/deps bench`", 0) end
  end
  if not io.open("/usr/bin/time") then error("bench/api.lua needs /usr/bin/time: run `sh .ci/deps bench`", 0) end
  USE_NODE = not opts["no-node"] and (opts.node or not QUICK)
    and have("node") and io.open(NODE_DIR .. "/node_modules/@gohighlevel/api-client/package.json") ~= nil
  if opts.node and not USE_NODE then
    error("--node: bench/node/node_modules is not installed (bench/run.sh installs it)", 0)
  end
  HAS_CLIENT = os.execute(q(GHLUA) .. " -e 'require \"ghl.client\"' >/dev/null 2>&1")
  DIR = capture("mktemp -d /tmp/ghlua-bench.XXXXXX")
  assert(DIR:match("^/tmp/ghlua%-bench%."), "mktemp failed")
end

-- ---- Scratch directory and cleanup ----

local REF = abs(opts["ref-dir"] or GHLUA:match("^(.*)/[^/]*$") .. "/bench")
local nginx_pid, sim_pid
local function cleanup()
  if nginx_pid then sys.kill(nginx_pid, 15) end
  if sim_pid then sys.kill(sim_pid, 15) end
  local limit = sys.now() + 5
  while sys.now() < limit and ((nginx_pid and sys.alive(nginx_pid)) or (sim_pid and sys.alive(sim_pid))) do
    sys.sleep(0.02)
  end
  if nginx_pid and sys.alive(nginx_pid) then sys.kill(nginx_pid, 9) end
  if sim_pid and sys.alive(sim_pid) then sys.kill(sim_pid, 9) end
  nginx_pid, sim_pid = nil, nil
  if DIR then os.execute("rm -rf " .. q(DIR)) end
end

-- ---- Test data: a realistic contact and a 100-contact page ----
-- Field names from HighLevel's contacts spec (GET /contacts/{id}, GET
-- /contacts/), values made up, written with a fixed key order so every run
-- serves the same bytes.

local seed = 42
local function rand(n) seed = (seed * 1103515245 + 12345) % 2147483648 return seed % n end
local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local function id20()
  local t = {}
  for i = 1, 20 do local k = rand(#ALNUM) + 1 t[i] = ALNUM:sub(k, k) end
  return table.concat(t)
end
local FIRST = { "Rubika", "Diego", "Amara", "Jonas", "Mei", "Liam", "Sofia", "Kwame", "Noor", "Elena" }
local LAST = { "Deo", "O'Brien", "Okafor", "Lindqvist", "Chen", "Murphy", "García", "Mensah", "Haddad", "Rossi" }
local CITIES = { { "Dolomite", "AL", "35061" }, { "Austin", "TX", "73301" }, { "Denver", "CO", "80202" },
  { "Portland", "OR", "97201" }, { "Columbus", "OH", "43004" } }
local LOCATION_ID = "ve9EPM428h8vShlRW1KT"
local USER_ID = "YlWd2wuCAZQzh2cH1fVZ"
local CONTACT_ID = "seD4PfOuKoVMLkEZqohJ"

local function jstr(s) return cjson.encode(s) end
local function contact_json(id, i)
  local f, l = FIRST[i % #FIRST + 1], LAST[(i * 7) % #LAST + 1]
  local city = CITIES[i % #CITIES + 1]
  local email = (f .. "." .. l):lower():gsub("[^%w.]", "") .. "." .. i .. "@example.com"
  local dnd = '{"status":"inactive","message":"","code":""}'
  return table.concat {
    '{"id":', jstr(id), ',"name":', jstr(f .. " " .. l), ',"locationId":', jstr(LOCATION_ID),
    ',"firstName":', jstr(f), ',"lastName":', jstr(l), ',"email":', jstr(email),
    ',"emailLowerCase":', jstr(email), ',"timezone":"America/Chicago","companyName":"DGS VolMAX"',
    ',"phone":', jstr(("+1555%07d"):format(i)), ',"dnd":false,"dndSettings":{"Call":', dnd, ',"Email":', dnd,
    ',"SMS":', dnd, ',"WhatsApp":', dnd, ',"GMB":', dnd, ',"FB":', dnd, '}',
    ',"type":"lead","source":"public api","assignedTo":', jstr(USER_ID),
    ',"address1":', jstr((100 + i) .. " 1st St N"), ',"city":', jstr(city[1]), ',"state":', jstr(city[2]),
    ',"country":"US","postalCode":', jstr(city[3]), ',"website":"https://www.example.com"',
    ',"tags":["lead","newsletter","webinar-2024"],"dateOfBirth":"1990-04-12"',
    ',"dateAdded":"2024-03-02T05:18:26.704Z","dateUpdated":"2024-06-16T11:39:30.564Z"',
    ',"firstNameLowerCase":', jstr(f:lower()), ',"fullNameLowerCase":', jstr((f .. " " .. l):lower()),
    ',"lastNameLowerCase":', jstr(l:lower()), ',"lastActivity":"2024-07-16T11:39:30.564Z"',
    ',"customFields":[{"id":"MgobCB14YMVKuE4Ka8p1","value":"Enterprise"},{"id":"Kx7bQ2f9LmNp3RsT5uVw","value":',
    tostring(i % 50), '},{"id":"Ab3dE5gH7jK9mN1pQ3sT","value":["email","sms"]}]',
    ',"additionalEmails":[],"followers":[]',
    ',"attributionSource":{"url":"https://www.example.com/landing","campaign":"spring-sale","utmSource":"google"',
    ',"utmMedium":"cpc","referrer":"https://www.google.com/","medium":"form","mediumId":"FglfHAn30PRwsZVyQlKp"',
    ',"ip":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64)"}}',
  }
end

local function write_data(www)
  spit(www .. "/contact.json", '{"contact":' .. contact_json(CONTACT_ID, 0) .. '}')
  local items, last = {}, nil
  for i = 1, 100 do
    last = id20()
    items[i] = contact_json(last, i)
  end
  spit(www .. "/page.json", table.concat {
    '{"contacts":[', table.concat(items, ","), '],"meta":{"total":1000,"nextPageUrl":',
    jstr("https://services.leadconnectorhq.com/contacts/?locationId=" .. LOCATION_ID
      .. "&limit=100&startAfter=1718537970564&startAfterId=" .. last),
    ',"startAfterId":', jstr(last), ',"startAfter":1718537970564,"currentPage":1,"nextPage":2,"prevPage":null}}' })
end

-- ---- nginx ----

local NGINX_CONF = [[
worker_processes 1;
daemon off;
master_process on;
pid %DIR%/nginx.pid;
error_log %DIR%/error.log warn;
%USER%
events { worker_connections 1024; }
http {
  access_log off;
  types { }
  default_type application/json;
  charset utf-8;
  charset_types application/json;
  sendfile on;
  tcp_nodelay on;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  open_file_cache max=16 inactive=600s;
  open_file_cache_valid 600s;
  client_body_temp_path %DIR%/tmp/body;
  proxy_temp_path %DIR%/tmp/proxy;
  fastcgi_temp_path %DIR%/tmp/fastcgi;
  uwsgi_temp_path %DIR%/tmp/uwsgi;
  scgi_temp_path %DIR%/tmp/scgi;
  ssl_certificate %DIR%/cert.pem;
  ssl_certificate_key %DIR%/key.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {
    listen 127.0.0.1:%H1% ssl;
    listen 127.0.0.1:%H2% ssl http2;
    listen 127.0.0.1:%HP%;
    root %DIR%/www;
    # HighLevel sends these on every answer; the limit here never binds.
    add_header X-RateLimit-Limit-Daily 200000000;
    add_header X-RateLimit-Daily-Remaining 199999999;
    add_header X-RateLimit-Interval-Milliseconds 10000;
    add_header X-RateLimit-Max 1000000;
    add_header X-RateLimit-Remaining 999999;
    location = /contacts/ { try_files /page.json =404; }
    location /contacts/ { try_files /contact.json =404; }
  }
  server {
    listen 127.0.0.1:%ST%;
    location = /status { stub_status; }
  }
}
]]

local PORTS = {}
local function start_nginx()
  sh("mkdir -p " .. q(DIR .. "/www") .. " " .. q(DIR .. "/tmp") .. " && chmod 755 " .. q(DIR) .. " " .. q(DIR .. "/www"))
  write_data(DIR .. "/www")
  sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1"
    .. " -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null"):format(q(DIR .. "/key.pem"), q(DIR .. "/cert.pem")),
    "openssl")
  -- curl and the C references are given the system roots plus the test
  -- certificate, as ghlua is (GHLUA_CA_BUNDLE adds to the system roots).
  local roots = slurp("/etc/ssl/certs/ca-certificates.crt") or ""
  spit(DIR .. "/ca.pem", roots .. "\n" .. slurp(DIR .. "/cert.pem"))
  for _ = 1, 8 do
    local base = 20000 + (sys.getpid() * 7 + math.floor(sys.now() * 1000)) % 40000
    PORTS = { h1 = base, h2 = base + 1, status = base + 2, http = base + 3 }
    local conf = NGINX_CONF:gsub("%%(%w+)%%", {
      DIR = DIR, H1 = PORTS.h1, H2 = PORTS.h2, ST = PORTS.status, HP = PORTS.http,
      USER = capture("id -u") == "0" and "user nobody nogroup;" or "" })
    spit(DIR .. "/nginx.conf", conf)
    os.remove(DIR .. "/error.log")
    sh(("nginx -p %s -c %s -e %s >/dev/null 2>&1 </dev/null & echo $! > %s"):format(
      q(DIR), q(DIR .. "/nginx.conf"), q(DIR .. "/error.log"), q(DIR .. "/nginx.master")), "nginx")
    nginx_pid = tonumber(slurp(DIR .. "/nginx.master"))
    local limit = sys.now() + 10
    while sys.now() < limit do
      local resp = http.request { url = ("http://127.0.0.1:%d/status"):format(PORTS.status), timeout = 1 }
      if resp and resp.status == 200 then return end
      if not sys.alive(nginx_pid) then break end
      sys.sleep(0.02)
    end
    local log = slurp(DIR .. "/error.log") or ""
    if sys.alive(nginx_pid) then sys.kill(nginx_pid, 9) end
    nginx_pid = nil
    if not log:find("in use") then error("nginx did not start:\n" .. log, 0) end
  end
  error("nginx: no free ports found", 0)
end

-- The worker processes' CPU time, seconds (utime + stime from /proc).
local CLK_TCK = tonumber(capture("getconf CLK_TCK")) or 100
local function nginx_cpu()
  local total = 0
  for pid in capture("ls /proc"):gmatch("%d+") do
    local stat = slurp("/proc/" .. pid .. "/stat")
    if stat then
      local rest = stat:match("%) (.*)$")
      local f = {}
      for w in (rest or ""):gmatch("%S+") do f[#f + 1] = w end
      -- f[1] is field 3 (state): ppid is f[2], utime f[12], stime f[13]
      if tonumber(f[2]) == nginx_pid or tonumber(pid) == nginx_pid then
        total = total + (tonumber(f[12]) or 0) + (tonumber(f[13]) or 0)
      end
    end
  end
  return total / CLK_TCK
end

-- stub_status: connections accepted and requests served so far.
local function nginx_counts()
  local resp = assert(http.request { url = ("http://127.0.0.1:%d/status"):format(PORTS.status), timeout = 5 })
  local accepts, _, requests = resp.body:match("\n%s*(%d+)%s+(%d+)%s+(%d+)")
  return tonumber(accepts), tonumber(requests)
end

-- ---- Timing ----

local ENV
local function base_url(proto)
  return ("%s://127.0.0.1:%d"):format(proto == "http" and "http" or "https", PORTS[proto])
end

local function set_env(proto)
  ENV = table.concat({ "env",
    "BENCH_BASE=" .. q(base_url(proto)),
    "BENCH_TOKEN=bench-pit-0123456789abcdef", "BENCH_CONTACT=" .. CONTACT_ID,
    "BENCH_LOCATION=" .. LOCATION_ID, "BENCH_CA=" .. q(DIR .. "/ca.pem"),
    "GHLUA_CA_BUNDLE=" .. q(DIR .. "/cert.pem"), "NODE_EXTRA_CA_CERTS=" .. q(DIR .. "/cert.pem"),
    "GHLUA_HOME=" .. q(DIR .. "/home"), "no_proxy=127.0.0.1", "NO_PROXY=127.0.0.1",
    "http_proxy=", "https_proxy=", "HTTPS_PROXY=", "HTTP_PROXY=" }, " ")
end

local function median(v)
  local s = {}
  for i, x in ipairs(v) do s[i] = x end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end
local function minmax(v)
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(v) do lo, hi = math.min(lo, x), math.max(hi, x) end
  return lo, hi
end

-- Run cmd `runs` times under hyperfine (no shell in between); returns the
-- wall times (seconds) and the mean user and system CPU.
local function hyperfine(cmd, runs)
  local out = DIR .. "/hf.json"
  os.remove(out)
  sh(("%s hyperfine -N --style none --output null --runs %d --export-json %s %s >%s 2>&1"):format(
    ENV, runs, q(out), q(cmd), q(DIR .. "/hf.log")), "hyperfine (see below)\n" .. (slurp(DIR .. "/hf.log") or ""))
  local r = cjson.decode(assert(slurp(out))).results[1]
  return r.times, r.user, r.system
end

-- Time a workload's programs, interleaved so that a burst of load from
-- elsewhere on the machine hits all of them alike: one untimed warm-up run
-- each, then `rounds` rounds in which each program runs `per_round` times.
-- Each row gets median, min, max (seconds), user and system (mean CPU
-- seconds), and server = {cpu_share (nginx worker CPU / wall time while the
-- program ran), conns_per_run, requests_per_run (from stub_status)}.
local function measure(rows, rounds, per_round)
  for _, r in ipairs(rows) do
    io.stderr:write(("  %s\n"):format(r.name))
    hyperfine(r.cmd, 1)
    r.times, r.user, r.system, r.cpu, r.wall, r.conns, r.reqs = {}, 0, 0, 0, 0, 0, 0
  end
  for _ = 1, rounds do
    for _, r in ipairs(rows) do
      local a0, q0 = nginx_counts()
      local c0, t0 = nginx_cpu(), sys.now()
      local times, user, system = hyperfine(r.cmd, per_round)
      local wall, cpu = sys.now() - t0, nginx_cpu() - c0
      local a1, q1 = nginx_counts()
      table.move(times, 1, #times, #r.times + 1, r.times)
      r.user, r.system = r.user + user * per_round, r.system + system * per_round
      r.cpu, r.wall, r.conns, r.reqs = r.cpu + cpu, r.wall + wall, r.conns + a1 - a0, r.reqs + q1 - q0 - 1
    end
  end
  for _, r in ipairs(rows) do
    local n = #r.times
    r.median = median(r.times)
    r.min, r.max = minmax(r.times)
    r.user, r.system, r.runs = r.user / n, r.system / n, n
    r.server = { cpu_share = r.cpu / r.wall, conns_per_run = r.conns / n, requests_per_run = r.reqs / n }
    r.times, r.cpu, r.wall, r.conns, r.reqs = nil, nil, nil, nil, nil
  end
  return rows
end

-- Peak RSS (KiB) of a program over CFG.rss_runs runs: {median, min, max}.
local function rss_cmd(cmd)
  local v = {}
  for i = 1, CFG.rss_runs do
    local f = DIR .. "/rss." .. i
    sh(("%s /usr/bin/time -f %%M -o %s %s >/dev/null"):format(ENV, q(f), cmd), "rss run")
    v[#v + 1] = tonumber(slurp(f):match("(%d+)%s*$"))
  end
  local lo, hi = minmax(v)
  return { median = median(v), min = lo, max = hi }
end

-- ---- The workloads ----

local W = q(ROOT .. "/bench/api_work.lua")
-- The CA directory ghlua reads system roots from on demand (libcurl's
-- default on Debian and Ubuntu); the "roots on demand" rows use it too.
local CAPATH = "/etc/ssl/certs"
local G = q(GHLUA)
local NODE = "node " .. q(NODE_DIR .. "/sdk.js")
local N, C, P = CFG.requests, CFG.concurrency, CFG.pages
local RESULTS = { config = CFG }

-- The rows of a workload: {name, cmd, role}, leaving out the ghl.client
-- rows when it is missing and the Node rows when they are not wanted.
local function rows(list, node_here)
  local out = {}
  for _, r in ipairs(list) do
    if (HAS_CLIENT or not r.client) and (node_here or not r.node) then
      out[#out + 1] = { name = r[1], cmd = r[2], role = r[3] }
    end
  end
  return out
end

-- Workloads 1-5 on one protocol (cleartext "http": 2-4 only, to see the
-- cost without TLS and CA bundles).
local function run_proto(proto)
  set_env(proto)
  local url = q(base_url(proto) .. "/contacts/" .. CONTACT_ID)
  local page = q(base_url(proto) .. "/contacts/?locationId=" .. LOCATION_ID .. "&limit=100")
  local node_here = USE_NODE and proto == CFG.protos[1]
  local out = {}
  local ONDEMAND = "env BENCH_CA=" .. q(DIR .. "/cert.pem") .. " BENCH_CAPATH=" .. q(CAPATH) .. " "
  local CURL = "curl -sS --fail -o /dev/null -H 'Authorization: Bearer bench-pit-0123456789abcdef'"
    .. " -H 'Version: 2021-07-28' -H 'Accept: application/json' --cacert "
  if proto ~= "http" then
    io.stderr:write(("%s: workload 1 (cold start)\n"):format(proto))
    out.w1 = measure(rows({
      { "lua5.4 -e ''", "lua5.4 -e ''", "lua" },
      { "ghlua -e ''", G .. " -e ''", "ghlua_empty" },
      { "curl CLI, one GET", CURL .. q(DIR .. "/ca.pem") .. " " .. url, "ref" },
      { "ghlua, one GET (ghl.client)", G .. " " .. W .. " get1", "ghlua", client = true },
      { "curl CLI, one GET, test certificate only", CURL .. q(DIR .. "/cert.pem") .. " " .. url, "curl_1ca" },
      { "curl CLI, one GET, roots on demand (--capath, as ghlua)", CURL .. q(DIR .. "/cert.pem") .. " --capath "
        .. q(CAPATH) .. " " .. url, "curl_capath" },
      { "node -e ''", "node -e ''", "node_empty", node = true },
      { "Node SDK, one GET", NODE .. " get1", "node", node = true },
    }, node_here), math.max(1, CFG.cold_runs // 5), math.min(5, CFG.cold_runs))
  end

  io.stderr:write(("%s: workload 2 (%d sequential GETs)\n"):format(proto, N))
  out.w2 = measure(rows({
    { "C reference (curl easy, reused handle)", q(REF .. "/ref_seq") .. " " .. url .. " " .. N, "ref" },
    { "C reference, roots on demand (as ghlua)", ONDEMAND .. q(REF .. "/ref_seq") .. " " .. url .. " " .. N, "ref_capath" },
    { "ghlua c:get loop", G .. " " .. W .. " seq " .. N, "ghlua", client = true },
    { "ghlua c:get loop, raw=true (checked, not decoded, as the reference)", G .. " " .. W .. " seq-raw " .. N,
      "ghlua_raw", client = true },
    { "ghlua ghl.http.request loop (no client)", G .. " " .. W .. " raw-seq " .. N, "raw" },
    { "Node SDK getContact loop", NODE .. " seq " .. N, "node", node = true },
  }, node_here), CFG.runs, 1)

  io.stderr:write(("%s: workload 3 (%d GETs at concurrency %d)\n"):format(proto, N, C))
  out.w3 = measure(rows({
    { "C reference (curl multi)", q(REF .. "/ref_multi") .. " " .. url .. " " .. N .. " " .. C, "ref" },
    { "C reference (curl multi), roots on demand (as ghlua)", ONDEMAND .. q(REF .. "/ref_multi") .. " " .. url .. " "
      .. N .. " " .. C, "ref_capath" },
    { "ghlua c:batch", G .. " " .. W .. " batch " .. N .. " " .. C, "ghlua", client = true },
    { "ghlua c:batch with each= (results not kept)", G .. " " .. W .. " stream " .. N .. " " .. C, "stream",
      client = true },
    { "ghlua ghl.parallel of c:get", G .. " " .. W .. " parallel " .. N .. " " .. C, "parallel", client = true },
    { "ghlua http.start/perform (no client)", G .. " " .. W .. " raw-conc " .. N .. " " .. C, "raw" },
    { "Node SDK, " .. C .. " async workers", NODE .. " conc " .. N .. " " .. C, "node", node = true },
  }, node_here), CFG.runs, 1)

  io.stderr:write(("%s: workload 4 (%d pages of 100 contacts, decoded)\n"):format(proto, P))
  out.w4 = measure(rows({
    { "C reference (curl easy + lua-cjson)", q(REF .. "/ref_decode") .. " " .. page .. " " .. P, "ref" },
    { "ghlua c:get of the page", G .. " " .. W .. " decode " .. P, "ghlua", client = true },
    { "ghlua ghl.http.request + resp:json()", G .. " " .. W .. " raw-decode " .. P, "raw" },
    { "Node SDK getContacts", NODE .. " decode " .. P, "node", node = true },
  }, node_here), CFG.runs, 1)

  if proto == "http" then return out end
  io.stderr:write(("%s: workload 5 (peak RSS)\n"):format(proto))
  out.w5 = rows({
    { "ghlua -e ''", G .. " -e ''", "ghlua0" },
    { "workload 2, C reference", q(REF .. "/ref_seq") .. " " .. url .. " " .. N, "ref2" },
    { "workload 3, C reference", q(REF .. "/ref_multi") .. " " .. url .. " " .. N .. " " .. C, "ref3" },
    { "workload 2, ghlua c:get loop", G .. " " .. W .. " seq " .. N, "ghlua2", client = true },
    { "workload 3, ghlua c:batch (keeps all 1,000 decoded contacts)", G .. " " .. W .. " batch " .. N .. " " .. C,
      "ghlua3", client = true },
    { "workload 3, ghlua c:batch with each=", G .. " " .. W .. " stream " .. N .. " " .. C, "ghlua3s",
      client = true },
    { "workload 2, ghlua (no client)", G .. " " .. W .. " raw-seq " .. N, "raw2" },
    { "workload 3, ghlua (no client)", G .. " " .. W .. " raw-conc " .. N .. " " .. C, "raw3" },
    { "workload 2, Node SDK", NODE .. " seq " .. N, "node2", node = true },
    { "workload 3, Node SDK", NODE .. " conc " .. N .. " " .. C, "node3", node = true },
  }, node_here)
  for _, r in ipairs(out.w5) do
    local m = rss_cmd(r.cmd)
    r.median, r.min, r.max = m.median, m.min, m.max
  end
  return out
end

-- Workload 6: a bulk job of creates against `ghlua sim` and its rate limit.
local function run_throttle()
  local n, max, interval = CFG.throttle, CFG.throttle_max, CFG.throttle_interval_ms
  io.stderr:write(("workload 6: %d creates at %d per %d ms\n"):format(n, max, interval))
  local ready = DIR .. "/sim.json"
  sh(("env no_proxy=127.0.0.1 %s sim --port 0 --quiet --ready-file %s --token bench-sim-token-0123456789"
    .. " --rate-max %d --rate-interval-ms %d </dev/null >%s 2>&1 & echo $! > %s"):format(
    G, q(ready), max, interval, q(DIR .. "/sim.log"), q(DIR .. "/sim.pid")), "ghlua sim")
  sim_pid = tonumber(slurp(DIR .. "/sim.pid"))
  local limit = sys.now() + 10
  while not (slurp(ready) or ""):find("url") do
    if sys.now() > limit or not sys.alive(sim_pid) then error("ghlua sim did not start:\n" .. (slurp(DIR .. "/sim.log") or ""), 0) end
    sys.sleep(0.02)
  end
  local info = cjson.decode(slurp(ready))
  local line = capture(("env BENCH_BASE=%s BENCH_TOKEN=bench-sim-token-0123456789 BENCH_LOCATION=%s GHLUA_HOME=%s"
    .. " no_proxy=127.0.0.1 NO_PROXY=127.0.0.1 %s %s creates %d 16 2>%s"):format(
    q(info.url), q(info.locationId), q(DIR .. "/home"), G, W, n, q(DIR .. "/creates.err")))
  local ok, r = pcall(cjson.decode, line:match("[^\n]*$"))
  if not ok or type(r) ~= "table" then error("creates failed:\n" .. line .. "\n" .. (slurp(DIR .. "/creates.err") or ""), 0) end
  local stats = assert(assert(http.request { url = info.url .. "/__sim/stats", timeout = 5 }):json())
  sys.kill(sim_pid, 15)
  r.sent_429 = stats.rateLimited
  r.server_requests = stats.requests
  r.t_min = (math.ceil(n / max) - 1) * interval / 1000
  r.ratio = r.t_min > 0 and r.seconds / r.t_min or nil
  r.max, r.interval_ms, r.concurrency = max, interval, 16
  return r
end

-- ---- The rows of issue 17, paired (--table) ----

-- Instructions executed in user space by cmd (valgrind's callgrind; the
-- programs are single processes, started through env).
local function instructions(cmd)
  local log = DIR .. "/cg.log"
  sh(("%s valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null %s >/dev/null 2>%s"):format(ENV, cmd, q(log)),
    "callgrind (see " .. log .. ")")
  local n = 0
  for c in (slurp(log) or ""):gmatch("Collected : (%d+)") do n = n + tonumber(c) end
  return n > 0 and n or error("callgrind gave no count:\n" .. (slurp(log) or ""), 0)
end

local function run_table()
  local BASE = opts.base and q(abs(opts.base))
  local rounds = opts.runs or (QUICK and 2 or 7)
  local out = { rounds = rounds, rows = {}, rss = {} }
  local CURL = "curl -sS --fail -H 'Authorization: Bearer bench-pit-0123456789abcdef'"
    .. " -H 'Version: 2021-07-28' -H 'Accept: application/json' --cacert " .. q(DIR .. "/cert.pem")
    .. " --capath " .. q(CAPATH)
  local ONDEMAND = "env BENCH_CA=" .. q(DIR .. "/cert.pem") .. " BENCH_CAPATH=" .. q(CAPATH) .. " "
  -- one row: programs by role (ref, curl, ghlua, base)
  local function row(key, label, proto, progs)
    set_env(proto)
    io.stderr:write(("table: %s\n"):format(label))
    local list = {}
    for _, role in ipairs { "ref", "ref_dec", "curl", "base", "ghlua" } do
      if progs[role] then list[#list + 1] = { name = role, cmd = progs[role], role = role } end
    end
    measure(list, rounds, 1)
    local r = { key = key, label = label, proto = proto, programs = {} }
    local ref, dec
    for _, p in ipairs(list) do
      if p.role == "ref" then ref = p elseif p.role == "ref_dec" then dec = p end
    end
    for _, p in ipairs(list) do
      r.programs[p.role] = { median = p.median, min = p.min, max = p.max, cpu = p.user + p.system,
        ratio = p.median / ref.median, cpu_ratio = (p.user + p.system) / (ref.user + ref.system),
        dec_ratio = dec and p.median / dec.median,
        requests_per_run = p.server.requests_per_run, conns_per_run = p.server.conns_per_run }
    end
    if opts.instructions then
      for _, p in ipairs(list) do r.programs[p.role].instructions = instructions(p.cmd) end
      for _, p in ipairs(list) do
        r.programs[p.role].ins_ratio = r.programs[p.role].instructions / r.programs.ref.instructions
      end
    end
    out.rows[#out.rows + 1] = r
  end
  local function urls(proto, path, n)
    return q(base_url(proto) .. path .. (path:find("?", 1, true) and "&" or "?") .. "n=[1-" .. n .. "]")
  end
  local function ghl(bin, mode) return bin and (bin .. " " .. W .. " " .. mode) or nil end
  local cpath, ppath = "/contacts/" .. CONTACT_ID, "/contacts/?locationId=" .. LOCATION_ID .. "&limit=100"
  for _, proto in ipairs { "h1", "http" } do
    local url = q(base_url(proto) .. cpath)
    local page = q(base_url(proto) .. ppath)
    local tls = proto == "h1"
    if tls then
      row("cold", "one GET, cold process", proto, {
        ref = ONDEMAND .. q(REF .. "/ref_seq") .. " " .. url .. " 1", curl = CURL .. " -o /dev/null " .. url,
        ghlua = ghl(G, "get1"), base = ghl(BASE, "get1") })
      row("seq", N .. " sequential GETs", proto, {
        ref = ONDEMAND .. q(REF .. "/ref_seq") .. " " .. url .. " " .. N, curl = CURL .. " " .. urls(proto, cpath, N),
        ref_dec = ONDEMAND .. q(REF .. "/ref_decode") .. " " .. url .. " " .. N,
        ghlua = ghl(G, "seq " .. N), base = ghl(BASE, "seq " .. N) })
    end
    row(tls and "conc" or "conc_http", N .. " GETs, " .. C .. " in flight" .. (tls and "" or ", cleartext"), proto, {
      ref = ONDEMAND .. q(REF .. "/ref_multi") .. " " .. url .. " " .. N .. " " .. C,
      ref_dec = ONDEMAND .. q(REF .. "/ref_multi_decode") .. " " .. url .. " " .. N .. " " .. C,
      curl = CURL .. " -Z --parallel-max " .. C .. " " .. urls(proto, cpath, N),
      ghlua = ghl(G, "batch " .. N .. " " .. C), base = ghl(BASE, "batch " .. N .. " " .. C) })
    if tls then
      row("seq_http_layer", N .. " sequential GETs, ghl.http alone (request + resp:json())", proto, {
        ref = ONDEMAND .. q(REF .. "/ref_seq") .. " " .. url .. " " .. N,
        ref_dec = ONDEMAND .. q(REF .. "/ref_decode") .. " " .. url .. " " .. N,
        ghlua = ghl(G, "raw-seq " .. N), base = ghl(BASE, "raw-seq " .. N) })
      row("pages", P .. " pages of 100 contacts, decoded", proto, {
        ref = ONDEMAND .. q(REF .. "/ref_seq") .. " " .. page .. " " .. P, curl = CURL .. " " .. urls(proto, ppath, P),
        ref_dec = ONDEMAND .. q(REF .. "/ref_decode") .. " " .. page .. " " .. P,
        ghlua = ghl(G, "decode " .. P), base = ghl(BASE, "decode " .. P) })
    end
  end
  set_env("h1")
  local url = q(base_url("h1") .. cpath)
  io.stderr:write("table: peak RSS\n")
  local rss = {
    { "ref", "C reference, " .. N .. " sequential", ONDEMAND .. q(REF .. "/ref_seq") .. " " .. url .. " " .. N },
    { "curl", "curl CLI, " .. N .. " sequential", CURL .. " " .. urls("h1", cpath, N) },
    { "ghlua", "ghlua c:get loop", ghl(G, "seq " .. N) },
    { "ghlua_stream", "ghlua c:batch with each=", ghl(G, "stream " .. N .. " " .. C) },
    { "ghlua_keep", "ghlua ghl.parallel keeping " .. N .. " decoded results", ghl(G, "parallel " .. N .. " " .. C) },
    { "base", "base: c:get loop", ghl(BASE, "seq " .. N) },
    { "base_stream", "base: c:batch with each=", ghl(BASE, "stream " .. N .. " " .. C) },
    { "base_keep", "base: ghl.parallel keeping " .. N .. " decoded results", ghl(BASE, "parallel " .. N .. " " .. C) },
  }
  for _, r in ipairs(rss) do
    if r[3] then
      local m = rss_cmd(r[3])
      out.rss[#out.rss + 1] = { role = r[1], name = r[2], median = m.median, min = m.min, max = m.max }
    end
  end
  return out
end

local function report_table(t)
  print(("Paired rounds: %d; every row's programs run one after the other in each round (hyperfine -N, one"
    .. " run each), after one warm-up run each. Ratios of median wall times against the C reference of the"
    .. " same row (curl easy or multi, HTTP/1.1, roots on demand as ghlua); CPU ratios of mean user +"
    .. " system time."):format(t.rounds))
  local has_base = t.rows[1].programs.base ~= nil
  local has_ins = t.rows[1].programs.ref.instructions ~= nil
  local has_dec = false            -- tables saved before the C + lua-cjson column have none
  for _, r in ipairs(t.rows) do has_dec = has_dec or r.programs.ref_dec ~= nil end
  local function f(x) return x and ("%.2f"):format(x) or "–" end
  -- the columns after the workload: {heading, value of a row}; "before"
  -- only with --base, the same-work ones only when measured
  local used = {}
  local function col(on, heading, value) if on then used[#used + 1] = { heading, value } end end
  col(true, "C reference, ms", function(p) return ("%.1f"):format(p.ref.median * 1000) end)
  col(true, "curl CLI", function(p) return f(p.curl and p.curl.ratio) end)
  col(has_base, "ghlua before", function(p) return f(p.base.ratio) end)
  col(true, "ghlua", function(p) return f(p.ghlua.ratio) end)
  col(has_base and has_dec, "before, against C + lua-cjson", function(p) return f(p.base.dec_ratio) end)
  col(has_dec, "ghlua against C + lua-cjson", function(p) return f(p.ghlua.dec_ratio) end)
  col(has_base, "CPU before", function(p) return f(p.base.cpu_ratio) end)
  col(true, "CPU ghlua", function(p) return f(p.ghlua.cpu_ratio) end)
  col(has_ins and has_base, "instr. before", function(p) return f(p.base.ins_ratio) end)
  col(has_ins, "instr. ghlua", function(p) return f(p.ghlua.ins_ratio) end)
  col(has_ins, "instructions, reference", function(p) return ("%.0fM"):format(p.ref.instructions / 1e6) end)
  local head = { "workload" }
  for _, c in ipairs(used) do head[#head + 1] = c[1] end
  print("\n| " .. table.concat(head, " | ") .. " |")
  print(("|---"):rep(#head) .. "|")
  for _, r in ipairs(t.rows) do
    local line = { r.label }
    for _, c in ipairs(used) do line[#line + 1] = c[2](r.programs) end
    print("| " .. table.concat(line, " | ") .. " |")
  end
  if has_dec then
    print("\nC + lua-cjson: the same C reference, each answer also decoded by lua-cjson into a Lua table"
      .. " (bench/ref.h, REF_DECODE): the work `c:get` does with its answer.")
  end
  if t.decode_ref then   -- the same, in tables saved before that column
    print(("\nC reference that decodes each page with lua-cjson: %.1f ms."):format(t.decode_ref * 1000))
  end
  print("\n| peak RSS | median MiB | min | max |")
  print("|---|---|---|---|")
  for _, r in ipairs(t.rss) do
    print(("| %s | %.1f | %.1f | %.1f |"):format(r.name, r.median / 1024, r.min / 1024, r.max / 1024))
  end
end

-- ---- Report ----

local function ms(x) return x and ("%.1f"):format(x * 1000) or "–" end
local function find(list, role) for _, r in ipairs(list or {}) do if r.role == role then return r end end end
local function verdict(ratio, target) if not ratio then return "–" end return ratio <= target and "met" or "**missed**" end

local TARGETED = { ghlua = true, ghlua_raw = true, stream = true }   -- rows a target applies to

local function timing_table(list, against, target)
  local ref = find(list, against)
  print("| program | median ms | min ms | max ms | ratio | CPU ms | nginx CPU | conns/run | requests/run |")
  print("|---|---|---|---|---|---|---|---|---|")
  for _, r in ipairs(list) do
    local ratio = ref and r.median / ref.median
    r.ratio = ratio
    local mark = (TARGETED[r.role] and target) and (" (target ≤ %.2f: %s)"):format(target, verdict(ratio, target)) or ""
    print(("| %s | %s | %s | %s | %s%s | %s | %.0f%% | %.1f | %.0f |"):format(r.name, ms(r.median), ms(r.min),
      ms(r.max), ratio and ("%.2f"):format(ratio) or "–", mark, ms(r.user + r.system), r.server.cpu_share * 100,
      r.server.conns_per_run,
      r.server.requests_per_run))
  end
end

local LABELS = { h1 = "HTTPS, HTTP/1.1 keep-alive", h2 = "HTTPS, HTTP/2 offered (ALPN h2)",
  http = "Cleartext HTTP/1.1 (diagnostic: no TLS, no CA bundle)" }
local function report_proto(proto, out)
  print(("\n### %s\n"):format(LABELS[proto]))
  if out.w1 then
    print("**1. Cold start** (ratios against the curl CLI)\n")
    local w1 = out.w1
    timing_table(w1, "ref", 1.3)
    local lua, ge = find(w1, "lua"), find(w1, "ghlua_empty")
    print(("\nghlua -e '' / lua5.4 -e '': %.2f"):format(ge.median / lua.median))
  end
  print(("\n**2. Sequential**: %d GETs of one contact, one after the other (ratios against the C reference)\n"):format(N))
  timing_table(out.w2, "ref", 1.15)
  print(("\n**3. Concurrent**: %d GETs at concurrency %d (ratios against the C reference)\n"):format(N, C))
  timing_table(out.w3, "ref", 1.2)
  print(("\n**4. Decoding**: %d fetches of a 100-contact page, each decoded (ratios against the C reference)\n"):format(P))
  timing_table(out.w4, "ref", 1.3)
  if not out.w5 then return end
  print("\n**5. Peak RSS** (target for ghlua ≤ 16 MB)\n")
  print("| program | median MiB | min MiB | max MiB | target |")
  print("|---|---|---|---|---|")
  for _, r in ipairs(out.w5) do
    local t = (r.role == "ghlua2" or r.role == "ghlua3" or r.role == "ghlua3s") and verdict(r.median / 1024, 16) or ""
    print(("| %s | %.1f | %.1f | %.1f | %s |"):format(r.name, r.median / 1024, r.min / 1024, r.max / 1024, t))
  end
end

-- One line per target of the issue, on the first protocol measured.
local function summary()
  local out = RESULTS[CFG.protos[1]]
  if not out.w1 then return end
  print(("\n**Targets** (%s; ratios of medians)\n"):format(LABELS[CFG.protos[1]]))
  print("| # | target | measured | verdict |")
  print("|---|---|---|---|")
  local function line(n, what, r, target, fmt)
    print(("| %s | %s ≤ %s | %s | %s |"):format(n, what, target, r and fmt:format(r) or "–", r and verdict(r, target) or "–"))
  end
  local g = find(out.w1, "ghlua")
  line(1, "ghlua one-GET script / curl CLI one GET", g and g.ratio, 1.3, "%.2f")
  g = find(out.w2, "ghlua")
  line(2, "c:get × " .. N .. ", decoded / C reference (not decoding)", g and g.ratio, 1.15, "%.2f")
  g = find(out.w2, "ghlua_raw")
  line(2, "c:get × " .. N .. ", raw=true / C reference (same work)", g and g.ratio, 1.15, "%.2f")
  g = find(out.w3, "ghlua")
  line(3, "c:batch × " .. N .. " at " .. C .. " / C reference", g and g.ratio, 1.2, "%.2f")
  g = find(out.w3, "stream")
  line(3, "c:batch with each= × " .. N .. " at " .. C .. " / C reference", g and g.ratio, 1.2, "%.2f")
  g = find(out.w4, "ghlua")
  line(4, "c:get of a 100-contact page × " .. P .. " / C reference", g and g.ratio, 1.3, "%.2f")
  for _, role in ipairs { "ghlua2", "ghlua3", "ghlua3s" } do
    g = find(out.w5, role)
    line(5, "peak RSS, " .. (g and g.name or role) .. ", MiB", g and g.median / 1024, 16, "%.1f")
  end
  local t = RESULTS.throttle
  if t then
    print(("| 6 | 429s seen by the caller = 0 | %d | %s |"):format(t.seen_429, t.seen_429 == 0 and "met" or "**missed**"))
    line(6, "bulk-job time / theoretical minimum", t.ratio, 1.05, "%.3f")
  end
end

-- The whole report, from RESULTS (also what --report prints from a saved
-- --json file).
local function report()
  print(RESULTS.meta.machine)
  print(RESULTS.meta.runs)
  for _, proto in ipairs(CFG.protos) do report_proto(proto, RESULTS[proto]) end
  local t = RESULTS.throttle
  if t then
    print(("\n**6. Throttle**: %d creates (c:batch, concurrency %d) against `ghlua sim` limited to %d per %d ms\n"):format(
      t.n, t.concurrency, t.max, t.interval_ms))
    print("| measure | value | target |")
    print("|---|---|---|")
    print(("| created | %d of %d | |"):format(t.ok, t.n))
    print(("| 429s seen by the caller | %d | 0: %s |"):format(t.seen_429, t.seen_429 == 0 and "met" or "**missed**"))
    print(("| 429s sent by the simulator | %d | |"):format(t.sent_429))
    print(("| other errors | %d | |"):format(t.other_errors))
    print(("| total time, s | %.2f | |"):format(t.seconds))
    print(("| theoretical minimum, s | %.2f | |"):format(t.t_min))
    print(("| ratio | %s | ≤ 1.05: %s |"):format(t.ratio and ("%.3f"):format(t.ratio) or "–", verdict(t.ratio, 1.05)))
  end
  summary()
end

local function main()
  local load0 = capture("cut -d' ' -f1-3 /proc/loadavg")
  prepare()
  RESULTS.client, RESULTS.node = HAS_CLIENT and true or false, USE_NODE and true or false
  io.stderr:write("building the C references in " .. REF .. "\n")
  sh(("make -s -C %s OUT=%s >&2"):format(q(ROOT .. "/bench"), q(REF)), "make -C bench")
  start_nginx()
  if opts.serve then
    for _, proto in ipairs(CFG.protos) do
      set_env(proto)
      print(proto .. ": " .. ENV)
    end
    print(("status: http://127.0.0.1:%d/status; nginx pid %d; Ctrl-C stops"):format(PORTS.status, nginx_pid))
    io.stdout:flush()
    while sys.sleep(3600) do end
    return
  end
  if opts.table then
    RESULTS.table = run_table()
    report_table(RESULTS.table)
    if opts.json then spit(opts.json, cjson.encode(RESULTS)) end
    return
  end
  for _, proto in ipairs(CFG.protos) do RESULTS[proto] = run_proto(proto) end
  if CFG.throttle > 0 then RESULTS.throttle = run_throttle() end

  local cpu = capture("sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1")
  RESULTS.meta = {
    machine = ("Measured %s on %s (%s cores, %s); %s; %s; %s; %s%s."):format(os.date("!%Y-%m-%d"), cpu,
      capture("nproc"), capture("uname -sr"), capture("nginx -v 2>&1"):gsub("^nginx version: ", ""),
      capture("curl --version | head -1"):match("^(curl %S+)"), capture("hyperfine --version"),
      USE_NODE and ("node " .. capture("node --version") .. ", @gohighlevel/api-client "
        .. cjson.decode(slurp(NODE_DIR .. "/node_modules/@gohighlevel/api-client/package.json")).version)
        or "Node SDK not run",
      HAS_CLIENT and "" or "; ghl.client missing: only the ghl.http rows"),
    runs = ("Timed runs per program: %d for workloads 2-4, %d for workload 1 (interleaved in rounds, after one"
      .. " warm-up run each), %d for peak RSS; medians, min and max; ratios are of medians; CPU ms is the"
      .. " program's mean user + system time. Load average before the run: %s, after: %s."):format(CFG.runs,
      math.max(1, CFG.cold_runs // 5) * math.min(5, CFG.cold_runs), CFG.rss_runs, load0,
      capture("cut -d' ' -f1-3 /proc/loadavg")),
  }
  report()
  if opts.json then spit(opts.json, cjson.encode(RESULTS)) end
end

if opts.report then
  RESULTS = cjson.decode((assert(slurp(opts.report), "cannot read " .. opts.report)))
  CFG = RESULTS.config
  N, C, P = math.tointeger(CFG.requests), math.tointeger(CFG.concurrency), math.tointeger(CFG.pages)
  if RESULTS.table then report_table(RESULTS.table) os.exit(0) end
  report()
  os.exit(0)
end

local ok, err = xpcall(main, debug.traceback)
cleanup()
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
