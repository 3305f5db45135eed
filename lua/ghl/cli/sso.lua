-- `ghlua sso decrypt|encrypt`: the encrypted user context of custom pages
-- (ghl.sso). The blob or the JSON comes on standard input and the app's
-- Shared Secret from an environment variable (GHL_SSO_SECRET, or the one
-- --secret-env names), never from the command line, where other users
-- can read it in the process list. No prompt either: these commands sit
-- in pipelines. decrypt prints the context as JSON (or one field with
-- --field); a blob that does not decrypt is an error naming the cause
-- (exit 1); bad flags or a missing secret exit 2.
local args = require "ghl.cli.args"
local E = require "ghl.error"

local M = {}

M.DEFAULT_ENV = "GHL_SSO_SECRET"

M.summary = "custom-page SSO: decrypt (or encrypt) the user-context blob"

local SECRET_ENV = [[
  --secret-env VAR   read the app's Shared Secret from $VAR (default
                     GHL_SSO_SECRET)

The format is OpenSSL's passphrase encryption: the same blob decrypts with
  openssl enc -d -aes-256-cbc -md md5 -a -A -pass env:GHL_SSO_SECRET
]]

local SECRET_FLAG = { "string", value = "VAR", complete = { "GHL_SSO_SECRET" } }

M.subcommands = {
  { name = "decrypt", summary = "print the user context of a blob read on stdin, as JSON",
    usage = "ghlua sso decrypt [--secret-env VAR] [--field NAME] < blob",
    help = [[
Read the blob (from exposeSessionDetails, or the payload of
REQUEST_USER_DATA_RESPONSE) on stdin and print the user context as JSON:
userId, companyId, role, type, userName, email, activeLocation.
  --field NAME       print that field alone
]] .. SECRET_ENV,
    flags = { ["secret-env"] = SECRET_FLAG, field = { "string", value = "NAME",
      complete = { "userId", "companyId", "role", "type", "userName", "email", "activeLocation" } } } },
  { name = "encrypt", summary = "make a blob from a JSON object read on stdin (tests, prototypes)",
    usage = "ghlua sso encrypt [--secret-env VAR] < json",
    help = [[
Read a JSON object on stdin and print a blob the same way HighLevel
(CryptoJS) makes one: for tests and prototypes.
]] .. SECRET_ENV,
    flags = { ["secret-env"] = SECRET_FLAG } },
}
local DECRYPT, ENCRYPT = M.subcommands[1], M.subcommands[2]

-- The secret from $var; raises a usage error when it is unset or empty.
local function secret(var, node)
  if not var:match("^[%a_][%w_]*$") then args.usage("--secret-env needs a variable name, got '" .. var .. "'", node.usage) end
  local s = os.getenv(var)
  if s and s ~= "" then return s end
  E.raise { kind = "usage", message = "no shared secret: set " .. var .. " to the app's Shared Secret"
    .. (var == M.DEFAULT_ENV and " (or name another variable with --secret-env)" or "") }
end

local function read_stdin(what, node)
  local data = io.stdin:read("a") or ""
  if not data:match("%S") then args.usage("expected " .. what .. " on standard input", node.usage) end
  return data
end

local function decrypt(argv)
  local o, rest = args.parse(argv, DECRYPT.flags, DECRYPT.usage)
  if #rest > 0 then args.usage("unexpected argument '" .. rest[1] .. "' (the blob is read from stdin)", DECRYPT.usage) end
  local sso = require "ghl.sso"
  local blob = read_stdin("the blob", DECRYPT)
  local text = sso.decrypt_text(blob, secret(o["secret-env"] or M.DEFAULT_ENV, DECRYPT))
  local ctx = require("cjson.safe").decode(text)
  if type(ctx) ~= "table" or (next(ctx) ~= nil and ctx[1] ~= nil) then
    E.raise { kind = "crypto", code = "not_json", where = "sso", message = "the blob decrypts to text that is not a JSON object" }
  end
  if o.field then
    local v = ctx[o.field]
    if v == nil then E.raise { kind = "usage", message = "the context has no field '" .. o.field .. "'" } end
    io.stdout:write(type(v) == "table" and require("ghl.json").encode(v) or tostring(v), "\n")
  else
    io.stdout:write(text:match("^%s*(.-)%s*$"), "\n")
  end
  return 0
end

local function encrypt(argv)
  local o, rest = args.parse(argv, ENCRYPT.flags, ENCRYPT.usage)
  if #rest > 0 then args.usage("unexpected argument '" .. rest[1] .. "' (the JSON is read from stdin)", ENCRYPT.usage) end
  local text = read_stdin("a JSON object", ENCRYPT)
  local v = require("cjson.safe").decode(text)
  if type(v) ~= "table" then E.raise { kind = "usage", message = "standard input is not a JSON object" } end
  io.stdout:write(require("ghl.sso").encrypt(text:match("^%s*(.-)%s*$"), secret(o["secret-env"] or M.DEFAULT_ENV, ENCRYPT)), "\n")
  return 0
end

function M.run(argv)
  local sub = table.remove(argv, 1)
  if sub == "decrypt" then return decrypt(argv) end
  if sub == "encrypt" then return encrypt(argv) end
  args.usage(sub and ("unknown sso subcommand '" .. sub .. "'") or "missing sso subcommand",
    require("ghl.cli.commands").usage_of(M, { "sso" }))
end

return M
