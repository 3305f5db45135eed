-- keys: key text and base64 as the webhook receiver and SSO read them
-- (src/crypto.c: strict base64, PEM / DER / raw Ed25519 keys through
-- OpenSSL's decoders, signature checks). The input is the text. Checked:
-- base64_decode gives bytes that encode back to the text without its
-- whitespace (one encoding per byte string), or a ghl.error; public_key
-- gives a key whose PEM reads back as the same key, or a ghl.error; a
-- signature check with the text as key or as signature is true, false or
-- nil, ghl.error.
local crypto = require "ghl.crypto"
local webhooks = require "ghl.webhooks"
local check = require "check"

local function result(v, err)
  if v == nil then check.expected(err) end
  return v
end

return function(text)
  local raw = result(crypto.base64_decode(text))
  if raw then
    check.equal(crypto.base64_encode(raw), (text:gsub("%s", "")), "base64 of the decoded bytes")
  end
  local info = result(crypto.public_key(text))
  if info then
    local again = result(crypto.public_key(info.pem))
    check.truth(again, "public_key of its own PEM failed")
    check.equal(again.spki, info.spki, "key read back from its PEM")
    check.truth(info.type == "ed25519" or info.type == "rsa" or type(info.type) == "string", "key type")
  end
  for _, v in ipairs {
    { crypto.ed25519_verify(text, "body", string.rep("\0", 64)) },
    { crypto.rsa_sha256_verify(text, "body", string.rep("\0", 256)) },
    { crypto.ed25519_verify(webhooks.PUBLIC_KEY, "body", raw or text) },
  } do
    check.truth(v[1] == true or v[1] == false or (v[1] == nil and require("ghl.error").is(v[2])),
      "signature check gave " .. tostring(v[1]))
  end
end
