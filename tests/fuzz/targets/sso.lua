-- sso: the SSO user-context blob (lua/ghl/sso.lua over src/crypto.c:
-- strict base64, EVP_BytesToKey, AES-256-CBC, PKCS#7). Input: the shared
-- secret on the first line, then the blob; a blob starting with "plain:"
-- is the text after it, encrypted with the secret first, so what comes
-- after decryption (text and JSON checks) is reached too.
-- Checked: decrypt raises nothing but ghl.errors; a blob made by
-- sso.encrypt decrypts to its text, unless the text is not UTF-8 (then
-- the error says so: wrong_secret, as for any non-text); decrypt gives a
-- table, and what decrypt_text gives is UTF-8 without control bytes.
local sso = require "ghl.sso"
local check = require "check"

local SALT = "\1\2\3\4\5\6\7\8"

local function try(f, ...)
  local ok, v = check.pcall(f, ...)
  if ok then return v end
  check.expected(v)
  return nil, v
end

return function(data)
  local secret, blob = data:match("^([^\n]*)\n(.*)$")
  if not secret then secret, blob = "k", data end
  local plain = blob:match("^plain:(.*)$")
  if plain and secret ~= "" then
    blob = sso.encrypt(plain, secret, SALT)
    local text, err = try(sso.decrypt_text, blob, secret)
    if text then
      check.equal(text, plain, "decrypt_text of an encrypted text")
    else
      check.truth(err.code == "wrong_secret" and (not utf8.len(plain) or plain:find("[%z\1-\8\11\12\14-\31\127]")),
        "a blob sso.encrypt made does not decrypt: " .. tostring(err))
    end
  end
  local text = try(sso.decrypt_text, blob, secret)
  if text then
    check.truth(utf8.len(text) and not text:find("[%z\1-\8\11\12\14-\31\127]"), "decrypted text with control bytes")
  end
  local ctx = try(sso.decrypt, blob, secret)
  if ctx then check.truth(type(ctx) == "table", "decrypt gave a " .. type(ctx)) end
end
