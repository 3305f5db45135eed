-- json: a reply body through resp:json() (src/http.c's response method
-- over lua-cjson, as ghl.http's responses have it), then what the library
-- does with a decoded reply: the error message and hint the client takes
-- from an error body (lua/ghl/hints.lua), and the REPL's printing
-- (lua/ghl/inspect.lua). The input is the body. Checked: a body that does
-- not decode is a ghl.error of kind "decode"; the message taken from a
-- body is a string or nil; printing never raises.
require "ghl.http"
local hints = require "ghl.hints"
local inspect = require "ghl.inspect"
local check = require "check"

local RESPONSE = debug.getregistry()["ghl.http.response"]
check.truth(RESPONSE, "ghl.http has registered no response metatable")

return function(body)
  local resp = setmetatable({ status = 400, body = body, method = "GET",
    url = "https://services.leadconnectorhq.com/contacts/",
    headers = { ["content-type"] = "application/json; charset=utf-8" } }, RESPONSE)
  local v, err = resp:json()
  if v == nil then
    check.expected(err)
    check.equal(err.kind, "decode", "error kind")
    return
  end
  local msg = hints.message_of(v)
  check.truth(msg == nil or type(msg) == "string", "message_of gave a " .. type(msg))
  hints.lookup(msg, { method = "GET", path = "/contacts/", scopes = { "contacts.readonly" },
    location = "loc1", status = 400 })
  check.truth(type(inspect(v)) == "string", "inspect gave no text")
  check.truth(type(inspect(v, { color = true, width = 20 })) == "string", "inspect gave no text")
end
