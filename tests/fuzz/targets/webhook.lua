-- webhook: a delivery to the webhook receiver (lua/ghl/webhooks.lua:
-- signature check over src/crypto.c, JSON body, timestamp, de-duplication
-- in the store, built-in INSTALL/UNINSTALL handling, the user's handler).
-- Input: an optional request line "METHOD PATH", header lines
-- "Name: value", a blank line, then the body. Without a signature header
-- the body is signed with the fuzz Ed25519 key, so the body's parsing is
-- reached; a signature header whose value is SIGN gets a valid signature
-- of that scheme (X-WH-Signature: RSA). The clock stands at
-- 2025-03-04T05:06:07Z and every input gets a fresh store.
-- Checked: the receiver answers (it never raises); every answer is JSON
-- with a status; nothing it logs carries a traceback; an accepted event
-- has a timestamp within max_age of now and is handed to the handler with
-- the raw body and the event decoded from it; delivered again, a handled
-- event is a duplicate (409) and a failed one is run again.
local webhooks = require "ghl.webhooks"
local E = require "ghl.error"
local crypto = require "ghl.crypto"
local store = require "ghl.store"
local sys = require "ghl.sys"
local fuzz = require "fuzz"
local check = require "check"
local cjson = require "cjson.safe"

local NOW = 1741064767
sys.time = function() return NOW end

local ed_private, ed_public = assert(crypto.generate_key("ed25519"))
local rsa_private, rsa_public = assert(crypto.generate_key("rsa", 1024))
local dbpath = fuzz.tmpdir() .. "/webhook.db"

local function parse(data)
  local req = { method = "POST", path = "/webhooks", headers = {}, remote = "127.0.0.1" }
  local head, body = data:match("^(.-)\r?\n\r?\n(.*)$")
  if not head then head, body = "", data end
  local first = true
  for line in (head .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    local m, p = line:match("^(%u+) (%S+)$")
    if first and m then
      req.method, req.path = m, p
    else
      local k, v = line:match("^([^:]+):%s*(.*)$")
      if k then req.headers[k:lower()] = v end
    end
    first = false
  end
  req.body = body
  local h = req.headers
  if h["x-ghl-signature"] == nil and h["x-wh-signature"] == nil then h["x-ghl-signature"] = "SIGN" end
  if h["x-ghl-signature"] == "SIGN" then h["x-ghl-signature"] = assert(webhooks.sign(body, ed_private)) end
  if h["x-wh-signature"] == "SIGN" then h["x-wh-signature"] = assert(webhooks.sign(body, rsa_private, "rsa")) end
  return req
end

local function remove_store()
  for _, sfx in ipairs { "", "-wal", "-shm" } do os.remove(dbpath .. sfx) end
end

return function(data)
  local req = parse(data)
  remove_store()
  local db <close> = assert(store.open(dbpath))
  local handled = {}
  local function handler(event, ctx)
    handled[#handled + 1] = { event = event, body = ctx.body }
    if event.fail_me then E.raise { kind = "handler", message = "failed on purpose" } end
  end
  local function log(level, line)
    check.truth(not line:find("stack traceback", 1, true), "the receiver logged a traceback (" .. level .. "): " .. line)
  end
  local r = webhooks.receiver { public_key = ed_public, rsa_public_key = rsa_public, legacy_rsa = true,
    store = db, handler = handler, path = "/webhooks", log = log }

  local function deliver()
    local resp = r:handle(req)
    check.truth(type(resp) == "table" and math.type(resp.status) == "integer", "no answer with a status")
    local v = cjson.decode(resp.body)
    check.truth(type(v) == "table", "the answer is not a JSON object: " .. tostring(resp.body))
    return resp.status, v
  end

  local status = deliver()
  if status == 200 then
    check.equal(#handled, 1, "handler calls for an accepted event")
    check.equal(handled[1].body, req.body, "the body the handler got")
    check.equal(handled[1].event, cjson.decode(req.body), "the event the handler got")
    local t = webhooks.parse_time(handled[1].event.timestamp)
    check.truth(t and math.abs(NOW - t) <= webhooks.MAX_AGE,
      "accepted an event whose timestamp is not within max_age: " .. tostring(handled[1].event.timestamp))
    check.equal(deliver(), 409, "answer to a handled event delivered again")
  elseif status == 429 then
    local n = #handled
    local again = deliver()
    check.truth(again ~= 409, "a failed event delivered again was refused as a duplicate")
    check.truth(n == 0 or #handled == n + 1, "a failed event delivered again did not reach the handler")
  end
end
