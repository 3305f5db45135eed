-- The ghlua side of the API-client benchmark (bench/api.lua runs it, one
-- process per timed run):
--   ghlua bench/api_work.lua MODE [N [C]]
-- Modes through ghl.client (token=, base=): get1 (one GET of a contact, for
-- cold start), seq N (N GETs one after the other), seq-raw N (the same
-- with raw=true: checked, not decoded), batch N C (c:batch of N
-- GETs at concurrency C), stream N C (the same with each=, keeping no
-- result), parallel N C (ghl.parallel of N functions each
-- doing c:get), decode N (N GETs of a 100-contact page, decoded), creates
-- N C (c:batch of N POST /contacts/ at concurrency C; prints a JSON line
-- {n, ok, seen_429, other_errors, seconds} on stdout). The same without the
-- client, on ghl.http alone: raw-seq N, raw-conc N C, raw-decode N.
-- Reads BENCH_BASE, BENCH_TOKEN, BENCH_CONTACT and BENCH_LOCATION (and
-- GHLUA_CA_BUNDLE for the self-signed certificate). Every answer is
-- checked; any failure raises, so the process exits non-zero and the
-- timing run that included it fails.
local ghl = require "ghl"

local MODE, N, C = arg[1], tonumber(arg[2] or 1), tonumber(arg[3] or 16)
local BASE = assert(os.getenv("BENCH_BASE"), "BENCH_BASE is not set")
local TOKEN = os.getenv("BENCH_TOKEN") or "bench-token-0000"
local CONTACT = os.getenv("BENCH_CONTACT") or "seD4PfOuKoVMLkEZqohJ"
local LOCATION = os.getenv("BENCH_LOCATION") or "ve9EPM428h8vShlRW1KT"
local CONTACT_PATH = "/contacts/" .. CONTACT

local function check_contact(v)
  if type(v) ~= "table" or type(v.contact) ~= "table" or v.contact.id ~= CONTACT then
    error("unexpected answer for " .. CONTACT_PATH .. ": " .. tostring(ghl.error.is(v) and v or type(v)))
  end
end

local function check_page(v)
  if type(v) ~= "table" or type(v.contacts) ~= "table" or #v.contacts ~= 100 then
    error("the page does not hold 100 contacts: " .. tostring(ghl.error.is(v) and v or type(v)))
  end
end

-- ---- Through ghl.client ----

local function client()
  return ghl.client { token = TOKEN, base = BASE, location = LOCATION }
end

local modes = {}

function modes.get1()
  check_contact(client():get(CONTACT_PATH))
end

function modes.seq()
  local c = client()
  for _ = 1, N do check_contact(c:get(CONTACT_PATH)) end
end

-- The same work as the C reference: status and body checked, nothing
-- decoded (raw=true returns the response).
modes["seq-raw"] = function()
  local c = client()
  for _ = 1, N do
    local r = c:get(CONTACT_PATH, nil, { raw = true })
    if r.status ~= 200 or not r.body:find(CONTACT, 1, true) then
      error("unexpected answer for " .. CONTACT_PATH .. ": HTTP " .. r.status)
    end
  end
end

function modes.batch()
  local reqs = {}
  for i = 1, N do reqs[i] = { method = "GET", path = CONTACT_PATH } end
  local res = client():batch(reqs, { concurrency = C })
  assert(#res == N, "batch returned " .. #res .. " results")
  for i = 1, N do check_contact(res[i]) end
end

-- Like batch, but each result goes to a callback as it arrives and none is
-- kept: what the C reference does with its bodies.
function modes.stream()
  local reqs = {}
  for i = 1, N do reqs[i] = { method = "GET", path = CONTACT_PATH } end
  local seen = 0
  local failed = client():batch(reqs, { concurrency = C, each = function(_, v)
    check_contact(v)
    seen = seen + 1
  end })
  assert(failed == 0 and seen == N, ("stream: %d results, %d errors"):format(seen, failed))
end

function modes.parallel()
  local c = client()
  local fns = {}
  for i = 1, N do fns[i] = function() return c:get(CONTACT_PATH) end end
  local res = ghl.parallel(fns, { concurrency = C })
  assert(#res == N, "parallel returned " .. #res .. " results")
  for i = 1, N do check_contact(res[i]) end
end

function modes.decode()
  local c = client()
  for _ = 1, N do check_page(c:get("/contacts/", { locationId = LOCATION, limit = 100 })) end
end

-- A bulk job against `ghlua sim`: N creates, each with its own email (the
-- simulated location refuses duplicates). 429s the caller sees are counted,
-- not raised: they are what the throttle is measured on.
function modes.creates()
  local sys = require "ghl.sys"
  local c = client()
  local reqs = {}
  local stamp = sys.getpid() .. "-" .. os.time()
  for i = 1, N do
    reqs[i] = { method = "POST", path = "/contacts/", body = {
      locationId = LOCATION, firstName = "Bulk", lastName = ("Contact %d"):format(i),
      email = ("bulk.%s.%d@example.com"):format(stamp, i), phone = ("+1555%07d"):format(i),
      tags = { "bench", "bulk" }, source = "ghlua bench" } }
  end
  local t0 = sys.now()
  local res = c:batch(reqs, { concurrency = C })
  local secs = sys.now() - t0
  local ok, seen429, other, first = 0, 0, 0, nil
  for i = 1, N do
    local v = res[i]
    if ghl.error.is(v) then
      if v.status == 429 then seen429 = seen429 + 1 else other = other + 1 end
      first = first or tostring(v)
    elseif type(v) == "table" and type(v.contact) == "table" then
      ok = ok + 1
    else
      other = other + 1
    end
  end
  print(require("cjson").encode { n = N, ok = ok, seen_429 = seen429, other_errors = other,
    seconds = secs, first_error = first })
end

-- ---- On ghl.http alone (what the client layer adds) ----

local http = ghl.http
local HEADERS = { Authorization = "Bearer " .. TOKEN, Version = "2021-07-28", Accept = "application/json" }

local function raw_get(url, query)
  local resp = assert(http.request { url = url, query = query, headers = HEADERS })
  assert(resp.status == 200, "HTTP " .. resp.status)
  return assert(resp:json())
end

modes["raw-seq"] = function()
  for _ = 1, N do check_contact(raw_get(BASE .. CONTACT_PATH)) end
end

modes["raw-decode"] = function()
  for _ = 1, N do check_page(raw_get(BASE .. "/contacts/", { locationId = LOCATION, limit = 100 })) end
end

modes["raw-conc"] = function()
  local started, done, inflight = 0, 0, 0
  local req = { url = BASE .. CONTACT_PATH, headers = HEADERS }
  while done < N do
    while inflight < C and started < N do
      assert(http.start(req))
      started, inflight = started + 1, inflight + 1
    end
    for _, t in ipairs(assert(http.perform(1))) do
      local resp = assert(t:response())
      assert(resp.status == 200, "HTTP " .. resp.status)
      check_contact(assert(resp:json()))
      done, inflight = done + 1, inflight - 1
    end
  end
end

local run = modes[MODE]
if not run then
  io.stderr:write("usage: ghlua bench/api_work.lua get1|seq|seq-raw|batch|stream|parallel|decode|creates|raw-seq|raw-conc|raw-decode [N [C]]\n")
  os.exit(2)
end
run()
