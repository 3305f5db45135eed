-- ghl.webhooks: receiving HighLevel webhooks (FACTS §9). Verifies a
-- delivery before anything else looks at it: X-GHL-Signature is base64
-- Ed25519 over the raw body, checked against HighLevel's published key
-- (built in as M.PUBLIC_KEY, replaceable); the legacy X-WH-Signature is
-- RSA-SHA256 with the key of the docs (M.RSA_PUBLIC_KEY), accepted only when
-- asked for. A receiver may also trust the local simulator's development
-- key (M.sim_key, M.sim_trust: why and when is explained there); what it
-- verifies is marked "simulator", never passed off as HighLevel's. Then it
-- parses the JSON, refuses timestamps older (or newer)
-- than max_age seconds, de-duplicates on webhookId through the store's
-- events table (an event whose handler failed may come again: HighLevel
-- redelivers after our 429), stores the event with its raw body and
-- headers, runs the built-in handling (INSTALL of a location mints and
-- stores its token from the stored agency token, once, in the Company's
-- rate budget, without ever holding up a delivery: what cannot go at once
-- is queued and minted between deliveries by r:pump; UNINSTALL marks the
-- resource's stored tokens "uninstalled") and the user's handler
-- `function(event, ctx)`, where ctx.client is an API client for the
-- event's location, made on first use. Authorization and Cookie headers
-- are not stored.
--   M.receiver(opts):handle(req)  -> response, for ghl.server; r:pump(),
--     r:wait_time(max), r:resume() for the loop that serves it
--   M.verify(body, headers, opts) -> scheme | nil, err
--   M.sim_key([create]), M.sim_trust(mode [, create]), M.local_api()
--   M.parse(body), M.check_time(event, max_age), M.event_id(event, body)
--   M.sign(body, private_key[, "rsa"]) -> base64 signature (tests, the simulator)
--   M.signature_headers(body, private_key[, rsa_private_key]) -> the
--     X-GHL-Signature (and legacy X-WH-Signature) headers of a delivery
--   M.replay_to_url(row, url), M.run_handler(handler, row, opts)
-- Functions returning `nil, err` do so for what a sender got wrong
-- (kind "signature", "decode", "stale", "duplicate"); load_handler and
-- read_key raise ghl.errors for what the user got wrong. Whatever a sender
-- puts in a body, signed or not (a timestamp of 1e30, NaN, a nested table,
-- a body nested 1000 deep), the receiver answers a 4xx and logs one line
-- with outside bytes escaped (ghl.error.sanitize); a store that fails
-- gives 429 (HighLevel redelivers), never a 500.
local crypto = require "ghl.crypto"
local E = require "ghl.error"
local cjson = require "cjson.safe"
local json = require "ghl.json"
local sys = require "ghl.sys"
local util = require "ghl.util"

-- The decoder for bodies: strict JSON (no NaN, Infinity or hex numbers)
-- and at most MAX_DEPTH levels of nesting; HighLevel's events have a few.
local MAX_DEPTH = 64
local strict = cjson.new()
strict.decode_invalid_numbers(false)
strict.decode_max_depth(MAX_DEPTH)

local M = {}

-- HighLevel's Ed25519 key for X-GHL-Signature (FACTS §9; raw key
-- 8b61d1d6cacbe28d7c3bc0516bb815258ec6edbba96cddc7f40c09ac708388e8).
M.PUBLIC_KEY = [[
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=
-----END PUBLIC KEY-----
]]

-- The RSA-4096 key for the legacy X-WH-Signature (DOCS-WH).
M.RSA_PUBLIC_KEY = [[
-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----
]]

M.HEADER = "x-ghl-signature"
M.LEGACY_HEADER = "x-wh-signature"
M.MAX_AGE = 300           -- seconds; FACTS §9 "reject if older than ~5 min"

local function fail(kind, code, message, extra)
  local t = extra or {}
  t.kind, t.code, t.message = kind, code, message
  return nil, E.new(t)
end

-- ---- Keys ----

-- The key text for a --public-key style value: the value itself when it
-- is key text (PEM, or base64 / hex without a path separator that names a
-- file), else the contents of the file it names. Checked with
-- crypto.public_key; raises a ghl.error (kind "usage") naming `what`.
function M.read_key(v, what)
  what = what or "public key"
  local text = v
  if not v:match("^%s*%-%-%-%-%-BEGIN") then
    local data = util.slurp(v)
    if data then
      text = data
    elseif v:find("/", 1, true) and not v:match("^[%w+/=%s]+$") then
      E.raise { kind = "usage", message = "cannot read " .. what .. " file " .. v }
    end
  end
  local info, err = crypto.public_key(text)
  if not info then E.raise { kind = "usage", message = "bad " .. what .. ": " .. err.message } end
  return text, info
end

-- read_private_key(v, what) -> the PEM text of an Ed25519 private key:
-- v itself when it is PEM, else the contents of the file it names (what
-- --webhook-key and --key take). Raises a ghl.error (kind "usage") naming
-- `what`.
-- ed25519_private(text) -> info (crypto.public_key's: type, pem, spki)
-- when text is an Ed25519 private key in PEM; else nil, why, what: what is
-- "type" for a key of another type (why names the type), "key" when text
-- is no key at all, "public" when it is a key without its private half
-- (why is crypto's message). The one check for a webhook signing key.
function M.ed25519_private(text)
  local info, err = crypto.public_key(text)
  if not info then return nil, err.message, "key" end
  if info.type ~= "ed25519" then return nil, info.type, "type" end
  local ok, serr = crypto.ed25519_sign(text, "")
  if not ok then return nil, serr.message, "public" end
  return info
end

function M.read_private_key(v, what)
  local text = v
  if not v:match("^%s*%-%-%-%-%-BEGIN") then
    local err
    text, err = util.slurp(v)
    if not text then E.raise { kind = "usage", message = what .. ": cannot read " .. v .. ": " .. tostring(err) } end
  end
  local ok, why, bad = M.ed25519_private(text)
  if bad == "type" then
    E.raise { kind = "usage", message = what .. " must be an Ed25519 key, got " .. why }
  end
  if not ok then
    E.raise { kind = "usage", message = what .. ": " .. why .. " (an Ed25519 private key in PEM is needed)" }
  end
  return text
end

-- ---- Signatures ----

-- A header's value, or nil when absent, empty or "N/A" (some senders'
-- way of saying "not signed").
local function header(headers, name)
  local v = headers and headers[name]
  if type(v) ~= "string" then return nil end
  v = v:match("^%s*(.-)%s*$")
  if v == "" or v == "N/A" then return nil end
  return v
end

-- Check base64 signature sig over body with verify_fn and key. Returns
-- scheme, or nil, err and (for a signature that decodes) the raw bytes.
local function check(scheme, name, verify_fn, key, body, sig)
  local raw, derr = crypto.base64_decode(sig)
  if not raw then
    return fail("signature", "malformed", name .. " is not base64: " .. derr.message)
  end
  local ok, err = verify_fn(key, body, raw)
  if ok == nil then
    return fail("signature", "bad_key", "the " .. scheme .. " key cannot be used: " .. err.message)
  end
  if not ok then
    local _, e = fail("signature", "invalid", name .. " does not verify with the configured "
      .. (scheme == "rsa" and "RSA" or "Ed25519") .. " key (body altered, or signed with another key)")
    return nil, e, raw
  end
  return scheme
end

-- An Ed25519 signature (raw bytes) that failed with the configured key:
-- "simulator" when sim (a M.sim_trust table) trusts the local simulator's
-- development key and it verifies with it; else nil and err, told when the
-- signature is the simulator's but not trusted here, and why.
local function check_sim(sim, body, raw, err)
  local key = sim and sim.load()
  if not (key and crypto.ed25519_verify(key, body, raw)) then return nil, err end
  if sim.trusted then return "simulator" end
  return fail("signature", "untrusted_sim", "X-GHL-Signature was made with the local simulator's development key,"
    .. " which this receiver does not trust: " .. sim.why)
end

-- verify(body, headers, opts) -> "ed25519" | "rsa" | "simulator" |
-- "none", or nil, err (kind "signature", code missing | malformed |
-- invalid | bad_key | legacy_only | untrusted_sim). headers: lower-case
-- names. opts: public_key (key text, default M.PUBLIC_KEY), legacy_rsa
-- (also accept X-WH-Signature when there is no X-GHL-Signature),
-- rsa_public_key (default M.RSA_PUBLIC_KEY), sim (a M.sim_trust table: an
-- X-GHL-Signature that fails with public_key is tried with the local
-- simulator's development key, "simulator" when it verifies and sim
-- trusts it), no_verify ("none": nothing is checked). When
-- X-GHL-Signature is present it alone decides; the configured key is
-- always tried first, so HighLevel's deliveries verify as they did.
function M.verify(body, headers, opts)
  opts = opts or {}
  if opts.no_verify then return "none" end
  local sig = header(headers, M.HEADER)
  if sig then
    local scheme, err, raw = check("ed25519", "X-GHL-Signature", crypto.ed25519_verify,
      opts.public_key or M.PUBLIC_KEY, body, sig)
    if scheme or not raw then return scheme, err end
    return check_sim(opts.sim, body, raw, err)
  end
  local legacy = header(headers, M.LEGACY_HEADER)
  if legacy and opts.legacy_rsa then
    return check("rsa", "X-WH-Signature", crypto.rsa_sha256_verify, opts.rsa_public_key or M.RSA_PUBLIC_KEY,
      body, legacy)
  end
  if legacy then
    return fail("signature", "legacy_only",
      "only a legacy X-WH-Signature (RSA) header, which is not accepted without --legacy-rsa")
  end
  return fail("signature", "missing", "no X-GHL-Signature header")
end

-- ---- The local simulator's development key ----
--
-- `ghlua sim` signs its deliveries like HighLevel, but not with HighLevel's
-- key (its private half is HighLevel's alone), so a receiver that trusts
-- only HighLevel's key refuses them all. The simulator therefore keeps one
-- development key pair per user: M.SIM_KEY_FILE in the ghlua home (the
-- directory of the token store: $GHLUA_HOME, else
-- $XDG_CONFIG_HOME/ghlua, else ~/.config/ghlua), an Ed25519 private key
-- made on first use, mode 0600, in that directory of mode 0700. `ghlua
-- sim` and `ghlua webhook trigger` sign with it; a receiver may accept it
-- besides HighLevel's key. What keeps that safe:
--   * The configured key (HighLevel's built-in one, or --public-key) is
--     always tried first and decides alone whenever it verifies: nothing
--     HighLevel signs is handled differently, and nothing is accepted
--     that no trusted key verifies.
--   * The development key is trusted only while it sits in the receiver's
--     own private home, read afresh at each use (crypto.read_key_file:
--     a regular file, no symbolic link, owned by the user, closed to
--     group and others, in a directory closed to them too). Only the same
--     user on the same machine can have made it or can sign with it, and
--     that user can read the token store beside it anyway. Nothing a
--     sender puts in a request decides whether it is trusted; deleting
--     the file withdraws the trust at once (the next use makes a new one).
--   * A receiver working with HighLevel does not trust it at all (the
--     default, mode "auto": only while GHLUA_API_BASE names a loopback
--     host, i.e. its API is a simulator on this machine; M.local_api). A
--     receiver whose built-ins and handler act on real accounts never
--     takes a simulated INSTALL, UNINSTALL or contact event for a real
--     one, whatever else runs on the machine (the simulator's POST
--     /__sim/webhooks signs any event it is sent). --sim-key trusts it
--     regardless, --no-sim-key never.
--   * What it verifies is marked: verify() answers "simulator", the
--     stored event's verified is "simulator" (not true), and handlers see
--     ctx.verified == "simulator". Replay protection (the timestamp's age,
--     webhookId de-duplication) applies exactly as to HighLevel's events.

M.SIM_KEY_FILE = "sim-webhook-key.pem"

-- sim_key_path() -> path, the ghlua home; or nil, err.
function M.sim_key_path()
  local dir, err = require("ghl.config").home()
  if not dir then return nil, err end
  return (dir:gsub("/$", "")) .. "/" .. M.SIM_KEY_FILE, dir
end


-- sim_key([create]) -> {private, public (PEM), spki, path, created}, or
-- nil, err. err.kind "missing" when there is no key and create is not
-- set; "permissions" when the file or the home is not private (the
-- message names the chmod); "crypto" when the file holds no Ed25519
-- private key. With create, a missing key is made (and the home with it),
-- once: processes starting together agree on one key.
function M.sim_key(create)
  local path, dir = M.sim_key_path()
  if not path then return nil, dir end
  local text, err = crypto.read_key_file(path)
  local created
  if not text and err.kind == "missing" and create then
    local ok
    ok, err = require("ghl.util").mkdirs(dir)
    if ok then
      created, err = crypto.create_key_file(path, assert(crypto.generate_key("ed25519")))
      if created ~= nil then text, err = crypto.read_key_file(path) end
    end
  end
  if not text then return nil, err end
  local info = M.ed25519_private(text)
  if not info then
    return nil, E.new { kind = "crypto", message = path .. " is not an Ed25519 private key"
      .. " (remove it: a new one is made on the next use)" }
  end
  return { private = text, public = info.pem, spki = info.spki, path = path, created = created == true }
end

-- local_api() -> true, or false and why: does GHLUA_API_BASE name a
-- loopback host (127.0.0.0/8, ::1, localhost), i.e. is this process
-- working with a simulator on this machine rather than with HighLevel?
function M.local_api()
  local config = require "ghl.config"
  if not config.api_base_set() then
    return false, "GHLUA_API_BASE is not set, so this receiver works with HighLevel"
  end
  local auth = config.api_base():match("^%a[%w+.-]*://([^/?#]*)") or ""
  auth = auth:gsub("^.*@", "")
  local host = (auth:match("^%[(.-)%]") or auth:match("^[^:]*")):lower():gsub("%.$", "")
  if host == "localhost" or host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") then return true end
  -- (not the URL itself: this reason goes back to a sender in a 401)
  return false, "GHLUA_API_BASE is not a simulator on this machine, so this receiver works with HighLevel"
end

-- sim_trust(mode [, create]) -> t: does a receiver trust the local
-- simulator's development key? mode "on" (--sim-key), "off"
-- (--no-sim-key), or "auto" (nil; trusted when M.local_api()). t: trusted,
-- why (when not: the reason and the flag that changes it), key (the
-- M.sim_key table, when there is a key; with create and trusted, made
-- when missing), err (why the key could not be read, other than being
-- missing), load() -> the public key PEM, read afresh, or nil: pass t as
-- opts.sim to M.verify / M.receiver.
function M.sim_trust(mode, create)
  local t = { mode = mode or "auto" }
  if t.mode == "off" then
    t.trusted, t.why = false, "--no-sim-key was given"
  elseif t.mode == "on" then
    t.trusted = true
  else
    local ok, why = M.local_api()
    t.trusted, t.why = ok, why and (why .. " (--sim-key trusts the key anyway)")
  end
  local key, err = M.sim_key(create and t.trusted)
  t.key = key
  if not key and err.kind ~= "missing" then t.err = err end
  function t.load()
    local k = M.sim_key(false)
    return k and k.public
  end
  return t
end

-- sign(body, private_key [, "rsa"]) -> base64 signature, or nil, err.
function M.sign(body, private_key, scheme)
  local sig, err
  if scheme == "rsa" then
    sig, err = crypto.rsa_sha256_sign(private_key, body)
  else
    sig, err = crypto.ed25519_sign(private_key, body)
  end
  if not sig then return nil, err end
  return crypto.base64_encode(sig)
end

-- signature_headers(body, private_key [, rsa_private_key]) -> the headers
-- HighLevel signs a delivery with: {["X-GHL-Signature"] = Ed25519, and
-- with an RSA key the legacy ["X-WH-Signature"] = RSA-SHA256}, both
-- base64 over the exact body; or nil, err.
function M.signature_headers(body, private_key, rsa_private_key)
  local sig, err = M.sign(body, private_key)
  if not sig then return nil, err end
  local h = { ["X-GHL-Signature"] = sig }
  if rsa_private_key then
    h["X-WH-Signature"], err = M.sign(body, rsa_private_key, "rsa")
    if not h["X-WH-Signature"] then return nil, err end
  end
  return h
end

-- ---- Events ----

-- Fields that name things and must be strings when present (JSON null
-- counts as absent and is removed).
local STRING_FIELDS = { "webhookId", "locationId", "companyId", "appId" }

-- parse(body) -> event (the decoded JSON object), or nil, err (kind
-- "decode"): strict JSON, nested at most MAX_DEPTH deep, an object with a
-- string `type`, and webhookId, locationId, companyId, appId strings when
-- present.
function M.parse(body)
  if type(body) ~= "string" then return fail("decode", "not_json", "the body is not a JSON object") end
  local v, err = strict.decode(body)
  if v == nil and err and err:find("too many nested", 1, true) then
    return fail("decode", "too_deep", ("the body is nested more than %d levels deep"):format(MAX_DEPTH))
  end
  if type(v) ~= "table" or (next(v) ~= nil and v[1] ~= nil) then
    return fail("decode", "not_json", "the body is not a JSON object" .. (err and (": " .. err) or ""))
  end
  if type(v.type) ~= "string" or v.type == "" then
    return fail("decode", "no_type", "the event has no \"type\"")
  end
  for _, k in ipairs(STRING_FIELDS) do
    if v[k] == cjson.null then v[k] = nil end
    if v[k] ~= nil and type(v[k]) ~= "string" then
      return fail("decode", "bad_field", ("the event's %s is %s, not a string"):format(k, M.describe(v[k])))
    end
  end
  return v
end

-- describe(v) -> a short printable account of a JSON value for messages:
-- strings quoted (cut at 40 characters, control bytes escaped), numbers as
-- they are, else "an object", "an array", "null", "true"/"false".
function M.describe(v)
  local t = type(v)
  if t == "string" then
    if #v > 40 then   -- cut at 40 bytes, not inside a UTF-8 sequence
      local n = 40
      while n > 36 and (v:byte(n + 1) & 0xC0) == 0x80 do n = n - 1 end
      v = v:sub(1, n) .. "…"
    end
    return "'" .. E.sanitize(v) .. "'"
  elseif t == "number" then
    return v ~= v and "NaN" or string.format("%.17g", v)
  elseif t == "table" then
    return (next(v) ~= nil and v[1] ~= nil) and "an array" or "an object"
  elseif v == cjson.null then
    return "null"
  end
  return tostring(v)
end

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
-- days_from_civil).
local function days(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- The times parse_time accepts: from 1970 to the end of year 9999.
local LATEST = 253402300799

-- parse_time(v) -> epoch seconds, or nil: ISO-8601 ("2025-03-04T05:06:07.123Z",
-- offsets "+02:00", no zone = UTC), or a number (milliseconds when it is
-- past the year 33658, else seconds). Anything else, or a time outside
-- 1970..9999 (NaN, infinities, 1e30, negative numbers), gives nil.
function M.parse_time(v)
  local t
  if type(v) == "number" then
    t = v > 1e12 and v / 1000 or v
  elseif type(v) == "string" and #v <= 64 then
    local y, mo, d, h, mi, s, frac, zone = v:match(
      "^%s*(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)([.,]?%d*)(.-)%s*$")
    if not y then return nil end
    y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s)
    if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or s > 60 then return nil end
    t = days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
    if #frac > 1 then t = t + tonumber("0." .. frac:sub(2)) end
    if zone ~= "" and zone ~= "Z" and zone ~= "z" then
      local sign, zh, zm = zone:match("^([+-])(%d%d):?(%d%d)$")
      if not sign or tonumber(zh) > 23 or tonumber(zm) > 59 then return nil end
      local off = tonumber(zh) * 3600 + tonumber(zm) * 60
      t = sign == "+" and t - off or t + off
    end
  else
    return nil
  end
  if not (t >= 0 and t <= LATEST) then return nil end   -- also NaN
  return t
end

-- timestamp([epoch]) -> "2025-03-04T05:06:07.123Z" (now by default).
function M.timestamp(t)
  t = t or sys.time()
  local whole = math.floor(t)
  return util.iso8601_ms(whole * 1000 + math.floor((t - whole) * 1000))
end

-- check_time(event, max_age [, now]) -> true, or nil, err (kind "stale"):
-- the event's timestamp must be within max_age seconds of now, either way
-- (a clock ahead by more is as suspect as a replay). max_age 0 or nil:
-- no check.
function M.check_time(event, max_age, now)
  if not max_age or max_age <= 0 then return true end
  local v = event.timestamp
  if v == cjson.null then v = nil end
  local t = M.parse_time(v)
  if not t then
    if v == nil then
      return fail("stale", "no_timestamp",
        "the event has no timestamp, so its age cannot be checked (--max-age 0 skips the check)")
    end
    return fail("stale", "bad_timestamp", "the event's timestamp is " .. M.describe(v)
      .. ", not a time between 1970 and 9999 (ISO-8601, or epoch seconds or milliseconds)")
  end
  local age = (now or sys.time()) - t
  if age > max_age then
    return fail("stale", "stale", string.format("the event's timestamp %s is %d s old; the limit is %s s (--max-age)",
      M.describe(v), math.floor(age), max_age))
  end
  if -age > max_age then
    return fail("stale", "future", string.format("the event's timestamp %s is %d s in the future; the limit is %s s",
      M.describe(v), math.floor(-age), max_age))
  end
  return true
end

local hex = util.hex

-- event_id(event, body) -> the webhookId, or for an event without one
-- "sha256:" and the first 40 hex digits of the body's SHA-256 (the same
-- bytes are the same event).
function M.event_id(event, body)
  if type(event.webhookId) == "string" and event.webhookId ~= "" then return event.webhookId end
  return "sha256:" .. hex(crypto.digest("sha256", body)):sub(1, 40)
end

-- ---- Handlers ----

-- load_handler(path) -> function(event, ctx). The file returns it; raises
-- a ghl.error (kind "usage") when it cannot be loaded or returns something
-- else.
function M.load_handler(path)
  local chunk, err = loadfile(path, "t")
  if not chunk then E.raise { kind = "usage", message = "cannot load handler " .. path .. ": " .. tostring(err) } end
  local ok, fn = pcall(chunk)
  if not ok then
    if E.is(fn) then error(fn, 0) end
    E.raise { kind = "usage", message = "handler " .. path .. " failed while loading: " .. tostring(fn) }
  end
  if type(fn) ~= "function" then
    E.raise { kind = "usage", message = "handler " .. path .. " must return a function(event, ctx), not a " .. type(fn) }
  end
  return fn
end

-- An API client for q = {location=} or {company=}.
local function make_client(q)
  return require("ghl.client").new(q)
end

-- context(event, row, opts) -> the handler's ctx: id, type, location,
-- company, app (appId), headers, body (raw), verified (the scheme:
-- "ed25519", "rsa", "simulator" for the local simulator's development key,
-- "stored" on a replay, "none"), received_at,
-- attempt, replay, store, log(fmt, ...), and client (made on first use).
function M.context(event, row, opts)
  opts = opts or {}
  local ctx = {
    id = row.id, type = event.type, location = event.locationId, company = event.companyId,
    app = event.appId, headers = row.headers_table or {}, body = row.body, verified = row.scheme,
    received_at = row.received_at, attempt = row.attempts or 1, replay = opts.replay or false,
    store = opts.store, log = function(fmt, ...) (opts.log or print)("info", string.format(fmt, ...)) end,
  }
  return setmetatable(ctx, { __index = function(t, k)
    if k ~= "client" then return nil end
    local q = t.location and { location = t.location } or t.company and { company = t.company }
    if not q then return nil end
    local c = make_client(q)
    rawset(t, "client", c)
    return c
  end })
end

-- run_handler(fn, event, ctx) -> true, or nil, err (its error, as text).
function M.run_handler(fn, event, ctx)
  local ok, err = xpcall(fn, function(e)
    if E.is(e) then return tostring(e) end
    return debug.traceback(tostring(e), 2)
  end, event, ctx)
  if ok then return true end
  return nil, err
end

-- ---- Built-in handling (INSTALL / UNINSTALL, as the official SDK) ----

M.AGENCY_WAIT = 300     -- seconds a location's INSTALL waits for the agency token
M.MINT_TRIES = 5        -- attempts of a queued mint that meets a passing failure
M.PUMP_BUDGET = 0.25    -- seconds of queued minting per round between deliveries

-- Does stored app `name` have the app id `app_id` (the client id's part
-- before '-')? true when app_id is nil.
local function app_matches(auth, name, app_id)
  if app_id == nil then return true end
  local a = auth.app(name, true)
  local cid = a and a.client_id
  return cid ~= nil and (cid == app_id or cid:match("^([^-]+)") == app_id)
end

-- The stored agency (Company) OAuth token row of the event's app and
-- company (any company when the event names none), or nil.
local function agency_row(auth, db, event)
  for _, r in ipairs(db:find_tokens { kind = "oauth", company = event.companyId }) do
    if r.resource_type == "Company" and app_matches(auth, r.app, event.appId) then return r end
  end
end

-- A stored row that still works: status ok (an expired access token is
-- refreshed on use). An uninstalled, spent or doubtful one is minted anew.
local function usable(row)
  return row.status == "ok"
end

-- A usable stored OAuth token of the event's app for location loc, or nil.
local function usable_row(auth, db, event, loc)
  for _, r in ipairs(db:find_tokens { kind = "oauth", location = loc }) do
    if usable(r) and app_matches(auth, r.app, event.appId) then return r end
  end
end

-- The throttle bucket a mint from Company row crow goes through (the
-- Company's: ghl.client.bucket_key), or nil when the app is gone.
local function mint_bucket(auth, crow)
  local a = auth.app(crow.app, true)
  return a and require("ghl.client").bucket_key(a.client_id, crow.resource_id)
end

local function stored_line(loc, app)
  return ("INSTALL on location %s: a token of app %s is stored already; nothing minted"):format(loc, app)
end

local function minted_line(loc, app)
  return "INSTALL: stored a location token for " .. loc .. " (app " .. app .. ")"
end

-- INSTALL. For a location (HighLevel sends one per location of a bulk
-- install), make sure a token of the app is stored for it: minted from
-- the stored agency token through ghl.auth.mint_stored (the Company's
-- throttle bucket, one task at a time per location), unless a usable one
-- is stored already, so a repeated INSTALL mints nothing. With a receiver
-- r the mint never waits in the delivery: when the agency token is not
-- stored yet (HighLevel sends INSTALL as the consent ends, often before
-- the app has exchanged its code) or the Company's rate budget is spent,
-- the event is queued (r:defer) and r:pump mints it between deliveries.
-- Returns a line for the log, and true when the event was queued.
local function install(event, id, db, r)
  local auth = require "ghl.auth"
  local loc = event.locationId
  if type(loc) ~= "string" or loc == "" then
    return "INSTALL on company " .. tostring(event.companyId)
      .. ": the agency install; each location's token comes with its own INSTALL"
  end
  local have = usable_row(auth, db, event, loc)
  if have then return stored_line(loc, have.app) end
  local crow = agency_row(auth, db, event)
  if not crow then
    if r then
      r:defer(id, event)
      return ("INSTALL on location %s: no agency (Company) token stored for this app yet; waiting up to %d s for one"
        .. " (a login may still be exchanging its code)"):format(loc, M.AGENCY_WAIT), true
    end
    return "INSTALL on location " .. loc .. ": no agency (Company) token stored for this app, so no location token was minted"
  end
  if r and not r:may_mint(mint_bucket(auth, crow)) then
    r:defer(id, event)
    return ("INSTALL on location %s: queued; company %s's rate budget is spent for now"):format(loc, crow.resource_id), true
  end
  local row = auth.mint_stored(crow, loc, usable)
  if r then r.stats.minted = r.stats.minted + 1 end
  return minted_line(loc, row.app)
end

-- UNINSTALL: mark the stored OAuth tokens of the location (or, without
-- one, the company) "uninstalled". Returns a line for the log.
local function uninstall(event, db, id)
  local auth = require "ghl.auth"
  local q = event.locationId and { location = event.locationId } or event.companyId and { company = event.companyId }
  if not q then return "UNINSTALL names no location or company" end
  q.kind = "oauth"
  local n = 0
  for _, r in ipairs(db:find_tokens(q)) do
    if app_matches(auth, r.app, event.appId) then
      assert(db:set_status(r.app, r.resource_id, "uninstalled",
        "UNINSTALL webhook " .. id .. " received " .. M.timestamp()))
      n = n + 1
    end
  end
  return string.format("UNINSTALL: marked %d stored token%s of %s %s uninstalled", n, n == 1 and "" or "s",
    event.locationId and "location" or "company", event.locationId or event.companyId)
end

-- builtin(event, id, db [, r]) -> a log line or nil, and true when the
-- event was queued on receiver r (see install). Raises what minting
-- raises; without r a mint waits for the throttle where it is.
function M.builtin(event, id, db, r)
  if event.type == "INSTALL" then return install(event, id, db, r) end
  if event.type == "UNINSTALL" then return uninstall(event, db, id) end
end

-- Would a queued mint meet a passing failure (one that may go away)?
local function passing(e)
  if not E.is(e) then return false end
  if e.code == "outcome_unknown" or e.status == 429 or (e.status or 0) >= 500 then return true end
  return e.kind == "connect" or e.kind == "timeout" or e.kind == "network" or e.kind == "tls"
end

-- ---- The receiver ----

local Receiver = {}
Receiver.__index = Receiver

-- receiver(opts) -> r. opts: path (nil or "/": any), public_key,
-- rsa_public_key, legacy_rsa, sim (M.sim_trust), no_verify, max_age (default M.MAX_AGE; 0:
-- off), handler (function or nil), builtins (default true), store (a
-- ghl.store handle; default ghl.auth's), log(level, line) with level
-- "event" (accepted), "reject", "error" or "info".
-- The owner of the loop calls r:pump() between requests and waits at most
-- r:wait_time(max) for them: queued INSTALLs are minted there (r.pending;
-- their events are stored with status "pending" until then, and r:resume()
-- queues the ones a stopped receiver left).
function M.receiver(opts)
  opts = opts or {}
  local r = setmetatable({ opts = opts, path = opts.path, max_age = opts.max_age or M.MAX_AGE,
    log = opts.log or function() end, pending = { by_id = {} }, next_due = math.huge,
    stats = { accepted = 0, rejected = 0, failed = 0, duplicates = 0, minted = 0, queued = 0 } }, Receiver)
  if r.path == "/" or r.path == "" then r.path = nil end
  return r
end

-- The store as a checked handle (its failures raise; see ghl.auth.checked).
function Receiver:store()
  local db = self.opts.store or require("ghl.auth").store()
  if db.raw == nil then db = require("ghl.auth").checked(db) end
  return db
end

local function store_failure(e)
  return E.is(e) and (e.kind == "store" or e.kind == "permissions")
end

-- Headers never stored: a sender's credentials have no business in the
-- event log.
local PRIVATE_HEADERS = { authorization = true, cookie = true, ["proxy-authorization"] = true }

local function stored_headers(headers)
  local keep = {}
  for k, v in pairs(headers) do
    if not PRIVATE_HEADERS[k] then keep[k] = v end
  end
  return assert(json.encode(keep))
end

local function answer(status, value)
  return { status = status, headers = { ["Content-Type"] = "application/json" },
           body = assert(json.encode(value)) }
end

-- "METHOD PATH from REMOTE", printable whatever the request carried.
local function request_line(req)
  return E.sanitize(string.format("%s %s from %s", tostring(req.method), tostring(req.path), req.remote or "?"))
end

-- Refuse a delivery: log it (one line) and answer status with the error.
function Receiver:reject(req, status, err, level)
  self.stats.rejected = self.stats.rejected + 1
  self.log(level or "reject", string.format("%d %s: %s", status, request_line(req),
    E.sanitize(err.message or err)))
  return answer(status, { error = err.code or err.kind, message = err.message })
end

-- handle(req) -> response table (ghl.server's contract). Never raises for
-- anything a sender does; a store that fails gives 429 and one log line.
function Receiver:handle(req)
  local path = (type(req.path) == "string" and req.path or "/"):gsub("%?.*$", "")
  if self.path and path ~= self.path then
    return self:reject(req, 404, { code = "not_found", message = "webhooks are received on " .. self.path })
  end
  if req.method ~= "POST" then
    local resp = self:reject(req, 405, { code = "method", message = "webhooks are POSTed" })
    resp.headers.Allow = "POST"
    return resp
  end
  local body, headers = req.body or "", req.headers or {}
  local scheme, err = M.verify(body, headers, self.opts)
  if not scheme then return self:reject(req, 401, err) end
  local event
  event, err = M.parse(body)
  if not event then return self:reject(req, 400, err) end
  local ok
  ok, err = M.check_time(event, self.max_age)
  if not ok then return self:reject(req, 401, err) end
  local resp
  ok, resp = pcall(self.record, self, req, event, body, headers, scheme)
  if ok then return resp end
  if not store_failure(resp) then error(resp, 0) end
  self.stats.failed = self.stats.failed + 1
  self.log("error", string.format("429 %s: cannot store event %s: %s", request_line(req),
    E.sanitize(M.event_id(event, body)), E.sanitize(resp.message)))
  return answer(429, { error = "store", message = "the event could not be stored; send it again" })
end

-- Store a verified event (de-duplicated) and dispatch it. Raises what the
-- store raises.
function Receiver:record(req, event, body, headers, scheme)
  local id = M.event_id(event, body)
  local db = self:store()
  local row = { id = id, type = event.type, location_id = event.locationId, company_id = event.companyId,
    received_at = sys.time(),
    body = body, headers = stored_headers(headers),
    verified = scheme == "simulator" and "simulator" or scheme ~= "none" }
  if not db:put_event(row) then
    if not db:retry_event(id) then
      self.stats.duplicates = self.stats.duplicates + 1
      return self:reject(req, 409, { code = "duplicate", message = "webhookId " .. id .. " was already received" })
    end
  end
  row = db:get_event(id) or row
  row.scheme, row.headers_table = scheme, headers
  return self:dispatch(event, row, db)
end

-- Run the built-ins and the handler for a stored event; answer 200, or
-- 429 (HighLevel redelivers) when either failed.
function Receiver:dispatch(event, row, db)
  local id = row.id
  local function failed(what, msg)
    self.stats.failed = self.stats.failed + 1
    db:set_event_status(id, "failed", what .. ": " .. msg)
    self.log("error", E.sanitize(string.format("429 %s %s: %s failed: ", event.type, id, what))
      .. E.sanitize(msg, true))
    return answer(429, { error = "handler", message = what .. " failed; HighLevel will redeliver" })
  end
  local queued = false
  if self.opts.builtins ~= false then
    local ok, line, q = xpcall(M.builtin, function(e)
      if E.is(e) then return tostring(e) end
      return debug.traceback(tostring(e), 2)
    end, event, id, db, self)
    if not ok then return failed("built-in " .. event.type .. " handling", line) end
    if line then self.log("info", E.sanitize(line)) end
    queued = q
  end
  if self.opts.handler then
    local ctx = M.context(event, row, { store = db, log = self.log })
    local ok, herr = M.run_handler(self.opts.handler, event, ctx)
    if not ok then
      -- its redelivery runs the built-in again
      if queued then self:undefer(id) end
      return failed("the handler", herr)
    end
  end
  if queued then
    db:set_event_status(id, "pending", "the location token is minted once the agency token and its rate budget allow")
  else
    db:set_event_status(id, "handled")
  end
  self.stats.accepted = self.stats.accepted + 1
  self.log("event", E.sanitize(string.format("200 %s %s%s%s%s%s", event.type, id,
    row.location_id and (" location " .. row.location_id) or "",
    (row.attempts or 1) > 1 and (" (attempt " .. row.attempts .. ")") or "",
    row.scheme == "none" and " (not verified)" or row.scheme == "simulator" and " (verified: simulator)" or "",
    queued and " (token queued)" or "")))
  return answer(200, { ok = true, id = id })
end

-- ---- Queued INSTALLs ----

-- Queue INSTALL event `event` (stored as `id`) for r:pump.
function Receiver:defer(id, event)
  local q = self.pending
  if q.by_id[id] then return end
  local now = sys.now()
  local item = { id = id, event = event, since = now, due = now, tries = 0 }
  q[#q + 1], q.by_id[id] = item, item
  self.stats.queued = self.stats.queued + 1
  self.next_due = math.min(self.next_due, now)
end

function Receiver:undefer(id)
  local q = self.pending
  if not q.by_id[id] then return end
  q.by_id[id] = nil
  for i, it in ipairs(q) do
    if it.id == id then table.remove(q, i) break end
  end
end

-- May a mint in throttle bucket `key` go now, without waiting, and ahead
-- of nothing queued for the same bucket?
function Receiver:may_mint(key)
  if not key then return true end
  for _, it in ipairs(self.pending) do
    if it.key == key then return false end
  end
  return require("ghl.client").wait_for(key) <= 0
end

-- Queue the INSTALL events a stopped receiver left "pending" in the store.
-- Returns how many.
function Receiver:resume()
  local db, n = self:store(), 0
  for _, row in ipairs(db:list_events { type = "INSTALL" }) do
    if row.status == "pending" then
      local event = M.parse(row.body)
      if event then
        self:defer(row.id, event)
        n = n + 1
      end
    end
  end
  return n
end

-- Try queued item `it` once. round: what this round of pump() learnt,
-- {blocked = {bucket key -> when it has room}, agency = {appId/companyId
-- -> Company row or false}}. Returns nil to keep it queued (it.due: when
-- to try again), else the event's final status ("handled" or "failed")
-- and a log line.
function Receiver:try(it, db, round, now)
  local auth = require "ghl.auth"
  local ev, loc = it.event, it.event.locationId
  if it.key and round.blocked[it.key] then
    it.due = round.blocked[it.key]
    return nil
  end
  local have = usable_row(auth, db, ev, loc)
  if have then return "handled", stored_line(loc, have.app) end
  local akey = tostring(ev.appId) .. "/" .. tostring(ev.companyId)
  local crow = round.agency[akey]
  if crow == nil then
    crow = agency_row(auth, db, ev) or false
    round.agency[akey] = crow
  end
  if not crow then
    if now - it.since >= M.AGENCY_WAIT then
      return "handled", ("INSTALL on location %s: no agency (Company) token of this app was stored within %d s;"
        .. " no location token was minted"):format(loc, M.AGENCY_WAIT)
    end
    it.due = now + 0.5
    return nil
  end
  it.key = mint_bucket(auth, crow)
  if it.key then
    local w = require("ghl.client").wait_for(it.key)
    if w > 0 then
      it.due = now + w
      round.blocked[it.key] = it.due
      return nil
    end
  end
  local ok, row = pcall(auth.mint_stored, crow, loc, usable)
  if ok then
    self.stats.minted = self.stats.minted + 1
    return "handled", minted_line(loc, row.app)
  end
  if not E.is(row) then
    return "failed", "INSTALL on location " .. loc .. ": minting failed: " .. tostring(row)
  end
  it.tries = it.tries + 1
  if passing(row) and it.tries < M.MINT_TRIES then
    it.due = now + 2 ^ it.tries
    self.log("error", E.sanitize(("INSTALL on location %s: minting failed (%s); trying again in %d s"):format(
      loc, row.message, 2 ^ it.tries)))
    return nil
  end
  return "failed", ("INSTALL on location %s: minting failed: %s"):format(loc, row.message)
end

-- Mint what is queued and may go now, for PUMP_BUDGET seconds at most
-- (deliveries keep being answered between rounds). Never raises for a
-- failed mint: the event is marked "failed" with the reason, and logged.
function Receiver:pump()
  local q = self.pending
  local now = sys.now()
  if #q == 0 or self.next_due > now then return end
  local db = self:store()
  local round, i, next_due = { blocked = {}, agency = {} }, 1, math.huge
  while i <= #q do
    local it = q[i]
    local status, line
    if it.due <= now and sys.now() - now < M.PUMP_BUDGET then
      status, line = self:try(it, db, round, sys.now())
    end
    if status then
      table.remove(q, i)
      q.by_id[it.id] = nil
      db:set_event_status(it.id, status, status == "failed" and line or nil)
      if status == "failed" then self.stats.failed = self.stats.failed + 1 end
      self.log(status == "failed" and "error" or "info", E.sanitize(line))
    else
      -- not tried this round (its time, or the round's budget): soon
      next_due = math.min(next_due, it.due > now and it.due or sys.now())
      i = i + 1
    end
  end
  self.next_due = next_due
end

-- How long the loop may wait for requests before pump() is due: at most max.
function Receiver:wait_time(max)
  if #self.pending == 0 then return max end
  return math.max(0, math.min(max, self.next_due - sys.now()))
end

-- ---- Replay ----

-- The stored headers of row as a table.
function M.headers_of(row)
  local h = row.headers and cjson.decode(row.headers)
  return type(h) == "table" and h or {}
end

-- replay_to_url(row, url) -> response, or nil, err: POST the stored raw
-- body with its original Content-Type and signature headers (a signature
-- covers the body only, so the copy verifies where the original did).
function M.replay_to_url(row, url)
  local h = M.headers_of(row)
  local headers = { ["Content-Type"] = h["content-type"] or "application/json" }
  if h[M.HEADER] then headers["X-GHL-Signature"] = h[M.HEADER] end
  if h[M.LEGACY_HEADER] then headers["X-WH-Signature"] = h[M.LEGACY_HEADER] end
  return require("ghl.http").request { method = "POST", url = url, body = row.body, headers = headers, timeout = 30 }
end

-- replay_to_handler(fn, row, opts) -> true, or nil, err text. The stored
-- event goes to fn as on delivery, with ctx.replay = true; nothing is
-- verified again and no built-in runs.
function M.replay_to_handler(fn, row, opts)
  local event, err = M.parse(row.body)
  if not event then return nil, err.message end
  row.headers_table = M.headers_of(row)
  row.scheme = row.verified == "simulator" and "simulator" or row.verified and "stored" or "none"
  local ctx = M.context(event, row, { replay = true, store = opts and opts.store, log = opts and opts.log })
  return M.run_handler(fn, event, ctx)
end

return M
