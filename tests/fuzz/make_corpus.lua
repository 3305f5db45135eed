-- Writes the seed corpora of tests/fuzz/corpus/TARGET/seed-* (real shapes
-- of what each parser reads: HighLevel replies, signed webhook bodies, SSO
-- blobs from tests/vectors, CSV exports, consent links, token stores).
-- Run from the repository with the plain build:
--   build/ghlua tests/fuzz/make_corpus.lua
-- It rewrites the seed-* files only; reproducers (repro-*, known-*) and
-- the units runs add are left alone. Needs the sqlite3 command (the
-- stores are rewritten on 512-byte pages to keep them small) and
-- GHLUA_HOME set to an empty private directory. JSON key order, the
-- generated key and the store files differ from run to run: commit the
-- seeds you meant to change.
local cjson = require "cjson"
local store = require "ghl.store"
local sso = require "ghl.sso"
local webhooks = require "ghl.webhooks"
local sys = require "ghl.sys"

local ROOT = "tests/fuzz/corpus"

local function write(target, name, data)
  assert(sys.mkdir(ROOT, tonumber("755", 8)))
  assert(sys.mkdir(ROOT .. "/" .. target, tonumber("755", 8)))
  local f = assert(io.open(ROOT .. "/" .. target .. "/seed-" .. name, "wb"))
  f:write(data)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- ---- csv ----

write("csv", "contacts-export", table.concat({
  "First Name,Last Name,Email,Phone,Tags,Created",
  "Ada,Lovelace,ada@example.com,+15550100,\"vip, newsletter\",2025-03-04T05:06:07Z",
  "Grace,Hopper,grace@example.com,,\"\",2025-03-05T10:00:00Z",
  "\"Zoë\",\"Ñúñez \"\"Z\"\"\",zoe@example.com,+15550101,\"multi",
  "line note\",2025-03-06", "" }, "\r\n"))
write("csv", "bom-semicolon", "\239\187\191id;name;amount\n1;\"A; B\";12,50\n2;C;\n\n3; D ;0\n")
write("csv", "ragged-and-blank", "a,b,c\n1,2\n\n4,5,6,7\r5\r\n\"\",\" \",\"\t\"\n")
write("csv", "unclosed-quote", "name,note\nAda,\"never closed\n")

-- ---- encode ----

write("encode", "consent-link", "https://marketplace.gohighlevel.com/v2/oauth/chooselocation?response_type=code"
  .. "&client_id=68a2fd84fab6670f45220ebf-megyp358&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback"
  .. "&scope=contacts.readonly%20contacts.write\nlocationId=ve9EPM428h8vShlRW1KT&query=ada lovelace"
  .. "&tags=vip&tags=new customer&email=ada+test@example.com")
write("encode", "token-form", "http://127.0.0.1:8080/callback?code=abc&state=xyz\n"
  .. "client_id=68a2fd84fab6670f45220ebf-megyp358&client_secret=s3cr3t&grant_type=refresh_token"
  .. "&refresh_token=eyJhbGciOi.J9&user_type=Location&redirect_uri=http://127.0.0.1:8080/callback")
write("encode", "unicode", "https://user:pw@[::1]:8443/a%20b?q=%E6%9D%B1#frag\nname=Zoë Ñúñez 東京&emoji=😀&empty=&=novalue")
write("encode", "not-utf8", "http://[bad\nname=\255\254&k\192=v")

-- ---- http (responses of the loopback server) ----

local function response(status, headers, body)
  local lines = { "HTTP/1.1 " .. status }
  for _, h in ipairs(headers or {}) do lines[#lines + 1] = h end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

local RATE = { "X-RateLimit-Max: 100", "X-RateLimit-Remaining: 99", "X-RateLimit-Interval-Milliseconds: 10000",
               "X-RateLimit-Limit-Daily: 200000", "X-RateLimit-Daily-Remaining: 199990",
               "Content-Type: application/json; charset=utf-8" }
local function http(name, call, ...)
  write("http", name, call .. "\n" .. table.concat({ ... }, "\n----\n"))
end
local contact = cjson.encode { contact = { id = "ocQHyuzHvysMo5N5VsXc", firstName = "Ada", lastName = "Lovelace",
  email = "ada@example.com", tags = { "vip" }, customFields = { { id = "f1", value = "x" } },
  dateAdded = "2025-03-04T05:06:07.123Z" }, traceId = "9b1c2d3e" }
http("get-200", "get", response("200 OK", RATE, contact))
http("get-401-invalid-jwt", "get", response("401 Unauthorized", RATE,
  '{"statusCode":401,"message":"Invalid JWT"}'))
http("get-400-message-array", "get", response("400 Bad Request", RATE,
  '{"statusCode":400,"message":["email must be an email","phone must be a valid phone number"],"error":"Bad Request"}'))
http("get-403-scope", "get", response("403 Forbidden", RATE,
  '{"statusCode":403,"message":"The token is not authorized for this scope.","traceId":"abc"}'))
http("get-429-then-200", "get",
  response("429 Too Many Requests", { "X-RateLimit-Max: 100", "X-RateLimit-Remaining: 0",
    "X-RateLimit-Interval-Milliseconds: 10000", "Content-Type: application/json" },
    '{"statusCode":429,"message":"Too Many Requests"}'),
  response("200 OK", RATE, contact))
http("get-429-daily", "get", response("429 Too Many Requests", { "X-RateLimit-Daily-Remaining: 0",
  "X-RateLimit-Limit-Daily: 200000" }, '{"message":"Too Many Requests"}'))
http("get-5xx-retries", "get", response("500 Internal Server Error", {}, ""),
  response("502 Bad Gateway", { "Content-Type: text/html" }, "<html><body>Bad gateway</body></html>"),
  response("503 Service Unavailable", { "Retry-After: 1" }, "{}"), response("200 OK", RATE, contact))
http("get-chunked", "get", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
  .. "X-RateLimit-Remaining: 50\r\n\r\n" .. string.format("%x", #contact) .. "\r\n" .. contact .. "\r\n0\r\n\r\n")
http("get-100-continue", "get", "HTTP/1.1 100 Continue\r\n\r\n" .. response("200 OK", RATE, contact))
http("get-close-delimited", "get", "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" .. contact)
http("get-not-json", "get", response("200 OK", { "Content-Type: text/plain" }, "OK \27[31mred\27[0m"))
http("post-201", "post", response("201 Created", RATE, contact))
http("post-400-duplicate", "post", response("400 Bad Request", RATE, cjson.encode { statusCode = 400,
  message = "This location does not allow duplicated contacts.",
  meta = { contactName = "Ada Lovelace", contactId = "ocQHyuzHvysMo5N5VsXc", matchingField = "email" } }))
http("post-500", "post", response("500 Internal Server Error", RATE, '{"statusCode":500,"message":"Internal server error"}'))
http("raw-200", "raw", response("200 OK", RATE, contact))
-- rate-limit lines resp:ratelimit() must read as resp:header() does: a
-- name twice, odd spacing and case, a space before the colon, a CR in a
-- name, near-miss names, empty and odd numbers
http("raw-ratelimit-odd", "raw", response("200 OK", { "x-ratelimit-max: 1e3", "X-RATELIMIT-MAX:\t7",
  "X-RateLimit-Remaining:   0x10  ", "X-RateLimit-Interval-Milliseconds : 5", "X-RateLimit-Interval-Milliseconds:",
  "X-RateLimit\rDaily-Remaining: 3", "X-RateLimit-Daily-Remaining: -3", "X-RateLimit-Limit-Dailyy: 9",
  "X-RateLimit-Limit-Daily: 123456789012345678901", "Content-Type: application/json" }, contact))
http("raw-422", "raw", response("422 Unprocessable Entity", RATE, '{"statusCode":422,"message":"Unprocessable","error":{"message":"bad"}}'))
local function page(items, meta)
  return response("200 OK", RATE, cjson.encode { contacts = items, meta = meta })
end
http("paginate-meta", "paginate meta",
  page({ { id = "a" }, { id = "b" } }, { total = 3, startAfterId = "b", startAfter = 1741064767000,
    nextPageUrl = "https://services.leadconnectorhq.com/contacts/?startAfterId=b" }),
  page({ { id = "c" } }, { total = 3, nextPageUrl = cjson.null }))
http("paginate-page", "paginate page",
  response("200 OK", RATE, cjson.encode { contacts = { { id = "a", searchAfter = { 1, "a" } },
    { id = "b", searchAfter = { 2, "b" } } }, total = 3 }),
  response("200 OK", RATE, cjson.encode { contacts = { { id = "c" } }, total = 3 }))
http("paginate-skip", "paginate skip",
  response("200 OK", RATE, '{"users":[{"id":"u1"},{"id":"u2"}],"count":3}'),
  response("200 OK", RATE, '{"users":[{"id":"u3"}],"count":3}'))
http("paginate-token", "paginate token",
  response("200 OK", RATE, '{"items":[{"id":1},{"id":2}],"pagination":{"hasNextPage":true,"nextPageToken":"t2","totalRecords":3}}'),
  response("200 OK", RATE, '{"items":[{"id":3}],"pagination":{"hasNextPage":false,"nextPageToken":null}}'))

-- ---- json (reply bodies) ----

write("json", "contact", contact)
write("json", "contacts-page", cjson.encode { contacts = { { id = "a", email = "a@example.com", tags = {} },
  { id = "b", customFields = { { id = "f", value = 1.5e300 } } } }, meta = { total = 2, startAfterId = "b",
  startAfter = 1741064767000, nextPageUrl = cjson.null, currentPage = 1 }, traceId = "t" })
write("json", "error-message-array", '{"statusCode":400,"message":["email must be an email",""],"error":"Bad Request"}')
write("json", "error-object", '{"error":{"message":"Invalid JWT","code":401},"status":401}')
write("json", "error-plain", '{"statusCode":401,"message":"Invalid JWT","traceId":"x"}')
write("json", "numbers-and-escapes", '[0,-0,1e400,-1e-400,12345678901234567890,0.1,"\\u0000\\ud83d\\ude00\\\\",true,false,null,{}]')
write("json", "nested", string.rep("[", 200) .. string.rep("]", 200))

-- ---- json_encode (JSON text lua-cjson decodes and ghl.json writes again) ----

for _, name in ipairs { "contact", "contacts-page", "error-message-array", "error-object", "error-plain",
                        "numbers-and-escapes", "nested" } do
  write("json_encode", name, read(ROOT .. "/json/seed-" .. name))
end
write("json_encode", "floats", '[0.1,1e-7,0.30000000000000004,1.7976931348623157e308,5e-324,-2.5e-300,9007199254740993,123456789012345678]')
write("json_encode", "keys", '{"b":1,"a":{"2":[],"1":{}},"":null,"\\u00e9":"/","10":[null,[null]],"9":"\\u001f\\u007f"}')

-- ---- json_decode (ghl.json.decode against lua-cjson, on any bytes) ----

for _, name in ipairs { "contact", "contacts-page", "error-message-array", "error-object", "error-plain",
                        "numbers-and-escapes", "nested" } do
  write("json_decode", name, read(ROOT .. "/json/seed-" .. name))
end
write("json_decode", "cjson-forms", '[01,-0,0x10,+1,1.,1e5,-Infinity,NaN,nan(1),1.5e+3,123456789012345,1234567890123456]')
write("json_decode", "duplicates", '{"a":1,"b":{"a":[],"a":{}},"a":null,"":"\\u00e9","a\\u0000":2}')
write("json_decode", "strings", '["\\ud83d\\ude00","\\ud800","\\/\\b\\f\\n\\r\\t","\255\1","x"]')

-- ---- webhook (request line, headers, blank line, body) ----

local T = "2025-03-04T05:06:07.123Z"
local function hook(name, head, event)
  write("webhook", name, head .. "\n\n" .. (type(event) == "string" and event or cjson.encode(event)))
end
local CT = "POST /webhooks\ncontent-type: application/json"
hook("contact-create", CT, { type = "ContactCreate", locationId = "ve9EPM428h8vShlRW1KT", id = "ocQHyuzHvysMo5N5VsXc",
  email = "ada@example.com", tags = { "vip" }, webhookId = "8d6f2c1e-0b6e-4d45-9d3b-0c1a2b3c4d5e", timestamp = T })
hook("install", CT, { type = "INSTALL", appId = "68a2fd84fab6670f45220ebf", locationId = "ve9EPM428h8vShlRW1KT",
  companyId = "GNb7aIv4rQFVb9iwNl5K", installType = "Location", timestamp = T, webhookId = "w-install" })
hook("uninstall-company", CT, { type = "UNINSTALL", appId = "68a2fd84fab6670f45220ebf",
  companyId = "GNb7aIv4rQFVb9iwNl5K", timestamp = "2025-03-04T07:06:07+02:00" })
hook("opportunity-ms", CT, { type = "OpportunityStatusUpdate", locationId = "l1", status = "won",
  monetaryValue = 1200.5, timestamp = 1741064767123 })
hook("handler-fails", CT, { type = "ContactTagUpdate", locationId = "l1", fail_me = true, timestamp = T,
  webhookId = "w-fail" })
hook("legacy-rsa", "POST /webhooks\nx-wh-signature: SIGN", { type = "NoteCreate", locationId = "l1", timestamp = T })
hook("bad-signature", CT .. "\nx-ghl-signature: c2lnbmF0dXJl", { type = "ContactDelete", timestamp = T })
hook("stale", CT, { type = "ContactCreate", timestamp = "2024-01-01T00:00:00Z" })
hook("not-an-object", CT, "[1,2,3]")
hook("get-method", "GET /webhooks", "{}")

-- ---- sso (secret line, then the blob) ----

for _, file in ipairs { "tests/vectors/sso_cryptojs.json", "tests/vectors/sso_openssl.json" } do
  for i, v in ipairs(cjson.decode(read(file)).vectors) do
    if v.blob and v.secret and not v.secret:find("\n") then
      write("sso", file:match("sso_(%w+)") .. "-" .. i, v.secret .. "\n" .. v.blob)
    end
  end
end
write("sso", "plain-context", "6a1b3c5d-7e9f-4a2b-8c4d-0e1f2a3b4c5d\nplain:"
  .. '{"userId":"MKQJ7wOVVmNOMvrnKKKK","companyId":"GNb7aIv4rQFVb9iwNl5K","role":"admin","type":"agency"}')
write("sso", "plain-array", "k\nplain:[1,2]")
write("sso", "wrapped-blob", "k\n" .. sso.encrypt({ userId = "u" }, "k", "saltsalt"):gsub("(" .. string.rep(".", 20) .. ")", "%1\n"))

-- ---- check (consent links; "build" for authorize_url's fields) ----

local LINK = "https://marketplace.gohighlevel.com/v2/oauth/chooselocation?response_type=code"
  .. "&client_id=68a2fd84fab6670f45220ebf-megyp358&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback"
  .. "&scope=contacts.readonly%20contacts.write&state=4f2a"
write("check", "clean", LINK)
write("check", "legacy-whitelabel", (LINK:gsub("marketplace%.gohighlevel%.com/v2", "marketplace.leadconnectorhq.com")))
write("check", "problems", "marketplace.gohighlevel.com/oauth/chooselocation?response_type=token&client_id=68a2fd84fab6670f45220ebf"
  .. "&redirect_uri=/callback&scope=contacts.readonly,contacts.write%20%20oauth.write+locations/write+all"
  .. "&scope=x&redirct_uri=http%253A%252F%252Fa&loginWindowOpenMode=popup")
write("check", "api-host", "http://services.leadconnectorhq.com/v2/oauth/chooselocation?client_id=%20a-b%20")
write("check", "flags", "--app-user-type")
write("check", "build-clean", "build\n68a2fd84fab6670f45220ebf-megyp358\nhttp://127.0.0.1:8080/callback\n"
  .. "contacts.readonly contacts.write\n4f2a\n")
write("check", "build-versioned", "build\nabc-def\nhttps://example.com/cb?x=1&y=%20\ncontacts\n\nv1.2")

-- ---- jq (filter line, then JSON) ----

local page_json = read(ROOT .. "/json/seed-contacts-page")
for name, filter in pairs {
  emails = ".contacts[].email", total = ".meta.total", select = "[.contacts[] | select(.tags | length > 0) | {id, email}]",
  keys = "keys_unsorted", entries = "to_entries | map(.key) | join(\",\")", csv = ".contacts[] | [.id, .email] | @csv",
  paths = "[paths | map(tostring) | join(\".\")]", reduce = "reduce .contacts[] as $c (0; . + 1)",
  try = "try error(\"x\") catch ., (.a? // \"none\")", strings = "..|strings|test(\"^a\"; \"i\")",
  limit = "limit(3; .contacts[])", group = ".contacts | group_by(.id) | map(length)",
  base64 = ".traceId | @base64 | @base64d", numbers = "[..|numbers] | add, min, max, (.[0]? // 0 | floor)",
  split = ".contacts[0].email | split(\"@\") | .[1] | ascii_upcase", tojson = "tojson | fromjson | .meta",
  bad = ".contacts[", runtime = ".meta.total + \"x\"", halt = "\"bye\" | halt_error",
} do
  write("jq", name, filter .. "\n" .. page_json)
end
write("jq", "several-inputs", ".\n1 \"two\" [3] {\"four\":4} null")
write("jq", "bad-input", ".a\n{\"a\":1,}")

-- ---- keys ----

local priv, pub = assert(require("ghl.crypto").generate_key("ed25519"))
write("keys", "ghl-ed25519", webhooks.PUBLIC_KEY)
write("keys", "wh-rsa", webhooks.RSA_PUBLIC_KEY)
write("keys", "ed25519-hex", "8b61d1d6cacbe28d7c3bc0516bb815258ec6edbba96cddc7f40c09ac708388e8")
write("keys", "ed25519-raw-b64", "i2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=")
write("keys", "ed25519-private", priv)
write("keys", "spki-one-line", (pub:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", ""):gsub("%s", "")))
write("keys", "signature", "3q2+7w==\n")

-- ---- store (database files) ----

local dir = os.getenv("GHLUA_HOME")
assert(dir and dir ~= "", "set GHLUA_HOME to an empty private directory")
local function db_seed(name, fill)
  local path = dir .. "/" .. name .. ".db"
  local db = assert(store.open(path))
  fill(db)
  db:close()
  assert(os.execute("sqlite3 " .. path .. " 'PRAGMA journal_mode=DELETE; PRAGMA page_size=512; VACUUM;' >/dev/null"))
  write("store", name, read(path))
  os.remove(path)
end
db_seed("empty", function() end)
db_seed("tokens", function(db)
  assert(db:put_app { name = "default", client_id = "68a2fd84fab6670f45220ebf-megyp358", client_secret = "s3cr3t",
    redirect_uri = "http://127.0.0.1:8080/callback", scopes = "contacts.readonly", whitelabel = false })
  assert(db:put_token { app = "default", resource_id = "loc1", resource_type = "Location", kind = "oauth",
    access_token = "at-1", refresh_token = "rt-1", expires_at = 1741068367, scope = "contacts.readonly",
    company_id = "GNb7aIv4rQFVb9iwNl5K", location_id = "loc1", user_type = "Location", name = "Main St" })
  assert(db:put_token { app = "default", resource_id = "GNb7aIv4rQFVb9iwNl5K", resource_type = "Company",
    kind = "oauth", access_token = "at-2", refresh_token = "rt-2", expires_at = 1741068367.5 })
  assert(db:put_token { app = "pit", resource_id = "loc2", resource_type = "Location", kind = "pit",
    access_token = "pit-xyz", status = "refused", note = "GET /contacts/ was refused" })
  assert(db:claim("default", "loc1", 30))
  assert(db:claim_phase("default", "loc1", "sending"))
  assert(db:kv_put("fuzz", "key", "value"))
  assert(db:put_event { id = "w-1", type = "ContactCreate", location_id = "loc1", received_at = 1741064767,
    body = '{"type":"ContactCreate"}\0binary', headers = '{"content-type":"application/json"}', verified = true })
  assert(db:put_event { id = "w-2", type = "INSTALL", received_at = 1741064768, body = "{}", status = "failed",
    note = "handler failed" })
end)
-- a file another tool wrote: ghlua's ids, but no NOT NULL, NULLs and
-- values of the wrong type where ghlua never writes them
local loose = dir .. "/loose.db"
assert(os.execute("sqlite3 " .. loose .. [[ "PRAGMA page_size=512; PRAGMA application_id=1734896737;
PRAGMA user_version=2;
CREATE TABLE apps(name, client_id, client_secret, redirect_uri, scopes, whitelabel BOOLEAN, user_type, created_at,
  updated_at);
CREATE TABLE tokens(app, resource_id, resource_type, kind, access_token, refresh_token, expires_at, scope,
  requested_scope, company_id, location_id, user_id, user_type, name, status, note, created_at, refreshed_at,
  refreshed_by, previous_refresh_token, previous_refreshed_at, PRIMARY KEY(app, resource_id));
CREATE TABLE claims(app, resource_id, pid, host, nonce, phase, started_at, lease_until, PRIMARY KEY(app, resource_id));
CREATE TABLE kv(ns, key, value, updated_at, PRIMARY KEY(ns, key));
CREATE TABLE events(id PRIMARY KEY, type, location_id, company_id, received_at, body, headers, verified BOOLEAN,
  status, note, attempts, updated_at);
INSERT INTO apps VALUES(NULL, x'00ff', 3, NULL, NULL, 'yes', NULL, NULL, NULL);
INSERT INTO tokens(app, resource_id, resource_type, kind, expires_at, refreshed_by) VALUES('default', 'loc1',
  NULL, 'oauth', 'soon', 1.5);
INSERT INTO tokens(app, resource_id) VALUES(7, x'6c6f6332');
INSERT INTO claims VALUES('default', 'loc1', 'pid', NULL, NULL, NULL, NULL, 9e99);
INSERT INTO kv VALUES('fuzz', 'key', NULL, NULL);
INSERT INTO events(id, body, verified, attempts, received_at) VALUES('e1', NULL, 7, 'x', 'now');" >/dev/null]]))
write("store", "loose", read(loose))
os.remove(loose)
print("wrote " .. ROOT)
