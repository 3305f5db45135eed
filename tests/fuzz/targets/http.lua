-- http: what a server can send the API client. The loopback server
-- answers with the raw HTTP responses of the input, in turn (the last one
-- again once they run out), so libcurl, the header parsing of src/http.c
-- (push_headers), the X-RateLimit-* reading and the throttle, the retries,
-- resp:json() and the error messages of lua/ghl/client/ and
-- lua/ghl/hints.lua, and pagination all read them. Input:
--   line 1: the call: get | post | raw | paginate STYLE (meta, page, skip,
--           offset, page_query, token); anything else is get
--   then:   responses separated by a line "----"
-- Time is virtual: the client's clock (ghl.sys.now) only moves when it
-- sleeps (ghl.loop.sleep), so a run never waits. Findings besides crashes
-- and tracebacks: one wait longer than MAX_WAIT, or not a number; more
-- than MAX_REQUESTS requests for one call (a loop the server drives).
local client = require "ghl.client"
local sys = require "ghl.sys"
local loop = require "ghl.loop"
local fuzz = require "fuzz"
local check = require "check"

local MAX_WAIT = 600       -- seconds: no answer may make the client wait longer
local MAX_REQUESTS = 90    -- the server answers 100, then stops

local clock = 1000
sys.now = function() return clock end
loop.sleep = function(s)
  check.truth(type(s) == "number" and s == s and s >= 0 and s <= MAX_WAIT,
    ("the client was told to wait %s s"):format(tostring(s)))
  clock = clock + s
end

local c = client.new { token = "fuzz-token-0000", base = "http://127.0.0.1:1", location = "loc1" }
local fresh = {}
for k, v in pairs(c.bucket) do fresh[k] = v end

local STYLES = { meta = true, page = true, skip = true, offset = true, page_query = true, token = true }

-- Put the client's throttle bucket back as new: inputs must not depend on
-- the ones before them.
local function reset()
  for k in pairs(c.bucket) do c.bucket[k] = nil end
  for k, v in pairs(fresh) do c.bucket[k] = v end
  c.bucket.sent = {}
end

local function split(data)
  local call, rest = data:match("^([^\n]*)\n?(.*)$")
  local responses = {}
  for r in (rest .. "\n----\n"):gmatch("(.-)\n%-%-%-%-\n") do
    responses[#responses + 1] = r
    if #responses == 8 then break end
  end
  return call, responses
end

local RATE_NAMES = { "X-RateLimit-Max", "X-RateLimit-Remaining", "X-RateLimit-Interval-Milliseconds",
                     "X-RateLimit-Daily-Remaining", "X-RateLimit-Limit-Daily" }

-- resp:ratelimit() (the values src/http.c noted as the header lines
-- arrived) reads each as tonumber reads resp:header(name), before and
-- after resp.headers is built; a value's type too (1000 is not 1000.0).
local function check_ratelimit(resp)
  local function same(got, how)
    for i, name in ipairs(RATE_NAMES) do
      local h = resp:header(name)
      local want = h and tonumber(h)
      check.truth(got[i] == want and math.type(got[i]) == math.type(want),
        ("resp:ratelimit() %s gives %s for %s, resp:header() %q"):format(how, tostring(got[i]), name, tostring(h)))
    end
  end
  same({ resp:ratelimit() }, "from the raw block")
  check.truth(type(resp.headers) == "table", "resp.headers is not a table")
  same({ resp:ratelimit() }, "from resp.headers")
end

return function(data)
  local call, responses = split(data)
  reset()
  c.base = "http://127.0.0.1:" .. fuzz.serve(responses)
  local style = call:match("^paginate (%S+)$")
  local ok, err = check.pcall(function()
    if STYLES[style] then
      local n = 0
      for _ in c:paginate("/contacts/", { limit = 2, pageLimit = 2, pageSize = 2 }, { style = style }) do
        n = n + 1
        check.truth(n <= 2 * MAX_REQUESTS, "pagination yields items without end")
      end
    elseif call == "post" then
      c:post("/contacts/", { firstName = "Ada", email = "ada@example.com" })
    elseif call == "raw" then
      local resp = c:request("GET", "/contacts/", { raw = true })
      check_ratelimit(resp)
      if resp.status < 400 then resp:json() end
    else
      c:get("/contacts/ve9EPM428h8vShlRW1KT")
    end
  end)
  check.truth(fuzz.served() <= MAX_REQUESTS,
    ("one call made %d requests (%s)"):format(fuzz.served(), ok and "and returned" or tostring(err)))
  if not ok then error(err, 0) end
end
