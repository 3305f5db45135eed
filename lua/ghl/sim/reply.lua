-- ghl.sim.reply: how the simulator speaks HTTP and JSON. JSON through
-- ghl.json (arrays that may be empty are marked with reply.array, as
-- an empty Lua table is an object), reason phrases, HighLevel-shaped
-- error bodies, and the exception used by route handlers: reply.raise(status, message, extra)
-- throws a value the pipeline turns into an error response; anything else a
-- handler throws is a simulator bug and becomes a 500. Also the small text
-- helpers: URL and form encoding, HTML escaping and pages, redirects,
-- base64url, ISO dates.
local json = require "ghl.json"

local M = {}

M.null = json.null

-- ---- JSON ----

-- Mark t (or a new table) as a JSON array, so it encodes as [] when empty.
M.array = json.array

function M.is_array(t)
  return getmetatable(t) == json.array_mt
end

-- Encode v as JSON text (ghl.json: object keys sorted, so output is
-- deterministic, unless json.object(t, order) gives HighLevel's order).
-- A value JSON cannot hold is a simulator bug: raised.
function M.encode(v)
  local text, err = json.encode(v)
  if not text then error("ghl.sim.reply: " .. err.message, 0) end
  return text
end

-- Decode JSON text; nil, message on failure.
M.decode = json.decode

-- ---- Responses ----

M.reasons = {
  [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed", [408] = "Request Timeout",
  [409] = "Conflict", [413] = "Payload Too Large", [415] = "Unsupported Media Type",
  [422] = "Unprocessable Entity", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

function M.reason(status)
  return M.reasons[status] or (status >= 500 and "Internal Server Error")
    or (status >= 400 and "Bad Request") or "OK"
end

-- A JSON response table for ghl.server.
function M.json(status, value, headers)
  local h = { ["Content-Type"] = "application/json; charset=utf-8" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return { status = status, headers = h, body = M.encode(value) }
end

-- The HighLevel error body: {statusCode, message, error, traceId} plus any
-- extra fields (meta, ...). message may be a string or an array of strings.
function M.error_body(status, message, trace_id, extra)
  local body = {
    statusCode = status,
    message = message or M.reason(status),
    error = M.reason(status),
    traceId = trace_id,
  }
  if type(body.message) == "table" then body.message = M.array(body.message) end
  for k, v in pairs(extra or {}) do body[k] = v end
  return body
end

-- ---- The handler exception ----

local HttpError = { __name = "ghl.sim.httperror" }
HttpError.__tostring = function(e)
  local m = e.message
  if type(m) == "table" then m = table.concat(m, "; ") end
  return string.format("%d %s", e.status, tostring(m))
end

-- Abort the current request with an error response. extra: fields merged
-- into the body (e.g. meta); headers: extra response headers.
function M.raise(status, message, extra, headers)
  error(setmetatable({ status = status, message = message, extra = extra,
    headers = headers }, HttpError), 0)
end

-- 422 with a validation message array (class-validator style).
function M.invalid(messages)
  M.raise(422, messages)
end

function M.is_http_error(v)
  return getmetatable(v) == HttpError
end

-- ---- Small text helpers ----

M.urlencode = require("ghl.util").urlencode

-- Decode one application/x-www-form-urlencoded component ('+' is a space).
M.urldecode = require("ghl.util").urldecode

-- Parse an application/x-www-form-urlencoded body into a table (the last
-- repeat of a name wins, except for the names in the set multi, whose
-- values are collected in an array). Never raises.
function M.form_decode(s, multi)
  local t = {}
  for pair in tostring(s or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k ~= "" then
      k, v = M.urldecode(k), M.urldecode(v)
      if multi and multi[k] then
        t[k] = t[k] or {}
        t[k][#t[k] + 1] = v
      else
        t[k] = v
      end
    end
  end
  return t
end

-- Escape text for HTML element content and attribute values.
function M.html_escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end

-- An HTML response table.
function M.html(status, body, headers)
  local h = { ["Content-Type"] = "text/html; charset=utf-8", ["Cache-Control"] = "no-store" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return { status = status, headers = h, body = body }
end

-- A 302 to url, with a tiny HTML body for clients that show it.
function M.redirect(url)
  return M.html(302, '<!DOCTYPE html><html><body>Redirecting to <a href="' .. M.html_escape(url) .. '">'
    .. M.html_escape(url) .. "</a></body></html>\n", { Location = url })
end

-- Base64url without padding (JWT segments).
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
function M.base64url(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local k = b == nil and 2 or c == nil and 3 or 4
    for j = 1, k do
      local idx = (n >> (6 * (4 - j))) & 63
      out[#out + 1] = B64:sub(idx + 1, idx + 1)
    end
  end
  return table.concat(out)
end

-- Query string from an array of {key, value} pairs (order kept).
function M.query_string(pairs_list)
  local parts = {}
  for _, kv in ipairs(pairs_list) do
    if kv[2] ~= nil then
      parts[#parts + 1] = M.urlencode(kv[1]) .. "=" .. M.urlencode(kv[2])
    end
  end
  return table.concat(parts, "&")
end

-- ISO 8601 UTC with milliseconds from epoch milliseconds.
M.iso8601 = require("ghl.util").iso8601_ms

-- Epoch milliseconds from "YYYY-MM-DDTHH:MM:SS[.sss]Z" (UTC only), or nil.
function M.parse_iso8601(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, frac = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ]?(%d?%d?):?(%d?%d?):?(%d?%d?)%.?(%d*)Z?$")
  if not y then return nil end
  local days_before = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 }
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 then return nil end
  local yy = y - 1970
  local leaps = ((y - 1) // 4 - (y - 1) // 100 + (y - 1) // 400) - (1969 // 4 - 1969 // 100 + 1969 // 400)
  local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
  local days = yy * 365 + leaps + days_before[mo] + (d - 1) + ((leap and mo > 2) and 1 or 0)
  local secs = days * 86400 + (tonumber(h) or 0) * 3600 + (tonumber(mi) or 0) * 60 + (tonumber(sec) or 0)
  local ms = 0
  if frac and frac ~= "" then ms = math.floor(tonumber("0." .. frac) * 1000 + 0.5) end
  return secs * 1000 + ms
end

-- "Lead Source" -> "lead_source".
-- count_param(query, name, default) -> a non-negative integer query
-- parameter (default when absent or empty); anything else is a 422 naming
-- it, as HighLevel answers for skip and limit.
function M.count_param(q, name, default)
  local v = q[name]
  if v == nil or v == "" then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then M.invalid { name .. " must be a number string" } end
  return n
end

-- lower(v) -> v as lower-case text for searching ("" for nil and null).
function M.lower(v)
  if v == nil or v == M.null then return "" end
  return tostring(v):lower()
end

function M.snake_case(s)
  s = tostring(s):gsub("'", ""):gsub("\u{2019}", ""):gsub("(%l)(%u)", "%1_%2"):lower()
  s = s:gsub("[^%w]+", "_"):gsub("^_+", ""):gsub("_+$", "")
  return s
end

return M
