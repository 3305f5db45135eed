-- encode: URL, query and form encoding (src/http.c: http.encode,
-- parse_url and the query/form building of a request; the client's path
-- placeholders). The input's first line is a URL for http.parse_url and a
-- value for a path placeholder; the rest are name=value pairs split on
-- '&' and the first '=', raw bytes (a repeated name makes an array), as
-- values coming from replies and files reach the encoder. Checked:
--   * http.encode gives nil, err (kind "encode") for text that is not
--     UTF-8, else what percent-decodes back to the same pairs, in sorted
--     order, with only unreserved characters unescaped;
--   * a request carrying the pairs as query and form sends exactly that
--     query string and form body (the loopback server echoes them);
--   * the client's prepared request puts the placeholder value into one
--     path segment.
local http = require "ghl.http"
local client = require "ghl.client"
local fuzz = require "fuzz"
local check = require "check"

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The pairs of an encoded string, in order.
local function decode(s)
  local out = {}
  for pair in s:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    check.truth(k, "encoded pair without '=': " .. pair)
    check.truth(not (k .. v):find("[^%w%-._~%%]"), "reserved character left unescaped in " .. pair)
    out[#out + 1] = { unescape(k), unescape(v) }
  end
  return out
end

-- The pairs http.encode should write for t: names sorted, arrays in order.
local function expected(t)
  local names, out = {}, {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = t[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do out[#out + 1] = { k, x } end
    else
      out[#out + 1] = { k, v }
    end
  end
  return out
end

local function valid_utf8(t)
  for k, v in pairs(t) do
    if not utf8.len(k) then return false end
    for _, x in ipairs(type(v) == "table" and v or { v }) do
      if not utf8.len(x) then return false end
    end
  end
  return true
end

local c = client.new { token = "fuzz-token-0000", base = "http://127.0.0.1:9", location = "loc1" }

return function(data)
  local line, rest = data:match("^([^\n]*)\n?(.*)$")
  local u, uerr = http.parse_url(line)
  if u then check.truth(u.scheme and u.host, "parse_url without scheme or host: " .. line)
  else check.expected(uerr) end

  local t = {}
  for pair in rest:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if type(t[k]) == "table" then t[k][#t[k] + 1] = v
    elseif t[k] then t[k] = { t[k], v }
    else t[k] = v end
  end

  local enc, err = http.encode(t)
  if not enc then
    check.expected(err)
    check.equal(err.kind, "encode", "error kind")
    check.truth(not valid_utf8(t), "valid UTF-8 refused: " .. err.message)
    return
  end
  check.truth(valid_utf8(t), "text that is not UTF-8 encoded")
  check.equal(decode(enc), expected(t), "pairs decoded from http.encode")

  -- the same pairs as a request's query and form body
  local port = fuzz.serve { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}" }
  local resp, rerr = http.request { method = "POST", url = "http://127.0.0.1:" .. port .. "/p?x=1",
    query = t, form = t, timeout = 5 }
  if not resp then error("request to the loopback server failed: " .. tostring(rerr), 0) end
  local sent = fuzz.last_request()
  local target, body = sent:match("^POST (%S+) HTTP/1%.1\r\n.-\r\n\r\n(.*)$")
  check.equal(target, "/p?x=1" .. (enc ~= "" and "&" .. enc or ""), "request target")
  check.equal(body, enc, "form body")

  -- a placeholder value stays inside its path segment
  local prep = c:prepare("GET", "/contacts/{contactId}", { query = { contactId = line } })
  local path = prep.url:match("^http://127%.0%.0%.1:9(/[^?]*)")
  check.truth(path, "prepared URL: " .. prep.url)
  local seg = path:match("^/contacts/(.*)$")
  check.truth(seg and not seg:find("/", 1, true), "placeholder value left its segment: " .. prep.url)
  check.equal(unescape(seg), line, "placeholder value")
end
