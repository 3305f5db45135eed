-- ghl.sso: the user context HighLevel gives custom pages and custom JS
-- (FACTS §10). The blob is CryptoJS's passphrase format, the same as
-- `openssl enc -aes-256-cbc -md md5 -a`: base64 of "Salted__", an 8-byte
-- salt and AES-256-CBC ciphertext, with key and IV from EVP_BytesToKey
-- (MD5, one iteration) of the app's Shared Secret and the salt.
--   decrypt(blob, secret)      -> the context table (userId, companyId,
--                                 role, type, userName, email, activeLocation)
--   decrypt_text(blob, secret) -> the decrypted JSON text
--   encrypt(value, secret [, salt]) -> blob (value: a table or JSON text);
--                                 for tests and custom-page prototypes
-- Failures raise a ghl.error that names the cause, never garbage: kind
-- "decode" with code bad_base64 or not_salted; kind "crypto" with code
-- truncated, wrong_secret, bad_padding or not_json. AES-CBC carries no
-- MAC, so "wrong secret" and "bad padding" are told apart by looking at
-- what the first block decrypts to: these codes are for logs and people.
-- A web backend must answer every failure the same way (a 401), or the
-- difference becomes a padding oracle for forging contexts.
local crypto = require "ghl.crypto"
local E = require "ghl.error"
local json = require "ghl.json"

local M = {}

M.MAGIC = "Salted__"

-- Fields of a decrypted context, in the order `ghlua sso decrypt` shows them.
M.FIELDS = { "userId", "companyId", "role", "type", "userName", "email", "activeLocation" }

local function raise(kind, code, message, hint)
  E.raise { kind = kind, code = code, where = "sso", message = message, hint = hint }
end

local function check_secret(secret)
  if type(secret) ~= "string" then error("sso: the secret must be a string", 3) end
  if secret == "" then raise("usage", "no_secret", "the shared secret is empty") end
end

-- Is s valid UTF-8 text (no control bytes but tab, CR, LF)?
local function is_text(s)
  if s:find("[%z\1-\8\11\12\14-\31\127]") then return false end
  return utf8.len(s) ~= nil
end

-- Does the start of a decryption look like the start of a JSON object? A
-- wrong key makes 16 random bytes, which are all printable about once in
-- 10^7 times.
local function looks_like_json(plain)
  local first = plain:sub(1, 16)
  return first:match("^%s*[{%[]") ~= nil and first:find("[%z\1-\8\11\12\14-\31\127-\255]") == nil
end

-- decrypt_text(blob, secret) -> the decrypted text (UTF-8). Raises (see
-- the top of the file).
function M.decrypt_text(blob, secret)
  if type(blob) ~= "string" then error("sso: the blob must be a string", 2) end
  check_secret(secret)
  local text = blob:gsub("%s+", "")
  if text == "" then raise("decode", "bad_base64", "the blob is empty") end
  if text:match("^[A-Za-z0-9+/]+=?=?$") and #text % 4 ~= 0 then
    raise("crypto", "truncated", string.format("the blob is truncated: %d base64 characters is not a multiple of 4",
      #text), "copy the whole value the page received")
  end
  local raw, err = crypto.base64_decode(text)
  if not raw then raise("decode", "bad_base64", "the blob is not base64: " .. err.message:gsub("^invalid base64: ", "")) end
  if raw:sub(1, 8) ~= M.MAGIC then
    raise("decode", "not_salted", "the blob does not start with \"Salted__\", so it is not CryptoJS's passphrase format",
      "pass the string from exposeSessionDetails or REQUEST_USER_DATA_RESPONSE as it is")
  end
  local ct = raw:sub(17)
  if #raw < 32 or #ct % 16 ~= 0 then
    raise("crypto", "truncated", string.format("the blob is truncated: %d bytes of ciphertext is not a whole number of 16-byte AES blocks",
      math.max(#raw - 16, 0)), "copy the whole value the page received")
  end
  local key, iv = crypto.bytes_to_key(secret, raw:sub(9, 16))
  local plain, derr = crypto.aes_256_cbc_decrypt(key, iv, ct)
  if not plain then
    local all = assert(crypto.aes_256_cbc_decrypt(key, iv, ct, true))
    if derr.code == "bad_padding" and looks_like_json(all) then
      raise("crypto", "bad_padding", "the blob decrypts to JSON text whose last block does not end in PKCS#7 padding (altered or cut at a block boundary)",
        "copy the whole value the page received")
    end
    raise("crypto", "wrong_secret", "the blob does not decrypt with this secret",
      "use the app's Shared Secret (marketplace app: Advanced Settings > Auth)")
  end
  if not is_text(plain) then
    raise("crypto", "wrong_secret", "the blob does not decrypt with this secret",
      "use the app's Shared Secret (marketplace app: Advanced Settings > Auth)")
  end
  return plain
end

-- decrypt(blob, secret) -> the user context (a table). Raises.
function M.decrypt(blob, secret)
  local plain = M.decrypt_text(blob, secret)
  local v = json.decode(plain)
  if type(v) ~= "table" or (next(v) ~= nil and v[1] ~= nil) then
    raise("crypto", "not_json", "the blob decrypts to text that is not a JSON object")
  end
  return v
end

-- encrypt(value, secret [, salt]) -> blob. value: a table (encoded as JSON)
-- or a string; salt: 8 bytes (default random).
function M.encrypt(value, secret, salt)
  check_secret(secret)
  local text = value
  if type(value) == "table" then text = assert(json.encode(value)) end
  if type(text) ~= "string" then error("sso.encrypt: value must be a table or a string", 2) end
  salt = salt or assert(require("ghl.sys").random_bytes(8))
  if #salt ~= 8 then error("sso.encrypt: salt must be 8 bytes", 2) end
  local key, iv = crypto.bytes_to_key(secret, salt)
  return crypto.base64_encode(M.MAGIC .. salt .. crypto.aes_256_cbc_encrypt(key, iv, text))
end

return M
