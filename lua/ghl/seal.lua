-- ghl.seal: secrets at rest in the token store. Client secrets, access
-- tokens, refresh tokens (and the previous one kept after a rotation) and
-- PITs are sealed with AES-256-GCM (ghl.crypto.seal: a version byte, a
-- fresh random 96-bit nonce per value, the tag checked on open) under a
-- key that never enters the store: GHLUA_STORE_KEY (32 bytes as 64 hex
-- digits or base64) or GHLUA_STORE_KEY_FILE (a private file, checked as
-- ghl.crypto.read_key_file checks keys). The store keeps only a key check,
-- HMAC-SHA256(key, "ghlua store key check") cut to 8 bytes (the key id), in
-- its kv table, so a wrong key is refused when the store is opened, before
-- anything is written. Each sealed value is authenticated with the
-- identity of its row (the app's name; the token's app and resource) so a
-- value copied to another row does not open.
--
-- wrap(engine) gives a handle with the engine's methods that seals on the
-- way in and opens on the way out, for every engine (SQLite, PostgreSQL):
-- ghl.auth.checked puts it under every caller. Its methods return nil, err
-- as the engine's do. Expected failures are ghl.error objects of kind
-- "store" naming GHLUA_STORE_KEY and GHLUA_STORE_KEY_FILE.
local crypto = require "ghl.crypto"
local E = require "ghl.error"

local M = {}

M.ENV, M.ENV_FILE = "GHLUA_STORE_KEY", "GHLUA_STORE_KEY_FILE"
M.NS, M.KEY = "store", "seal"        -- kv entry holding "v1 KEYID"
M.PREFIX = "sealed1:"                -- a sealed value: PREFIX .. base64(blob)
local CHECK = "ghlua store key check"
local MAKE = "make one with 'ghlua store key new' and keep it in a file of mode 0600 or a secret manager"

-- The secret fields of each kind of row.
M.APP_FIELDS = { "client_secret" }
M.TOKEN_FIELDS = { "access_token", "refresh_token", "previous_refresh_token" }

local function err(msg, hint, code)
  return E.new { kind = "store", message = msg, hint = hint, code = code }
end

-- ---- Keys ----

-- parse_key(text, where) -> 32-byte key, or nil, err: 64 hex digits or
-- base64 of 32 bytes (surrounding whitespace ignored).
function M.parse_key(text, where)
  text = text:match("^%s*(.-)%s*$")
  if #text == 64 and text:match("^%x+$") then
    return (text:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
  end
  local raw = crypto.base64_decode(text)
  if raw and #raw == 32 then return raw end
  return nil, err(where .. " is not a store key (32 bytes as 64 hex digits or base64)", MAKE, "bad_key")
end

-- key_from_env() -> key, where | nil. Raises (kind "store") on a key that
-- is malformed, a key file that cannot be read or is not private, or both
-- variables set.
function M.key_from_env()
  local text, file = os.getenv(M.ENV), os.getenv(M.ENV_FILE)
  if text == "" then text = nil end
  if file == "" then file = nil end
  if text and file then
    E.raise { kind = "store", message = "both " .. M.ENV .. " and " .. M.ENV_FILE .. " are set",
              hint = "set one of them" }
  end
  local where = M.ENV
  if file then
    where = M.ENV_FILE .. " (" .. file .. ")"
    local t, e = crypto.read_key_file(file)
    if not t then
      E.raise { kind = "store", message = M.ENV_FILE .. ": " .. e.message,
                hint = e.kind == "missing" and MAKE or "the key file must be yours, mode 0600, in a directory of mode 0700" }
    end
    text = t
  end
  if not text then return nil end
  local key, e = M.parse_key(text, where)
  if not key then error(e, 0) end
  return key, where
end

-- key_id(key) -> 16 hex digits identifying key (HMAC, not the key).
function M.key_id(key)
  return require("ghl.util").hex(crypto.hmac_sha256(key, CHECK):sub(1, 8))
end

-- new_key() -> a fresh key as 64 hex digits.
function M.new_key()
  local raw = assert(require("ghl.sys").random_bytes(32))
  return require("ghl.util").hex(raw)
end

-- ---- Values ----

function M.app_aad(name) return "app\0" .. name end
function M.token_aad(app, rid) return "token\0" .. app .. "\0" .. rid end

function M.is_sealed(v)
  return type(v) == "string" and v:sub(1, #M.PREFIX) == M.PREFIX
end

function M.seal_value(key, plain, aad)
  return M.PREFIX .. crypto.base64_encode(assert(crypto.seal(key, plain, aad)))
end

-- open_value(key, text, aad) -> plain, or nil, reason (a string).
function M.open_value(key, text, aad)
  local blob = crypto.base64_decode(text:sub(#M.PREFIX + 1))
  if not blob then return nil, "not valid base64" end
  local plain, e = crypto.open(key, blob, aad)
  if not plain then return nil, e.message end
  return plain
end

-- ---- The store's seal state ----

-- state(engine) -> key id stored ("" when unsealed), or nil, err.
function M.stored_id(engine)
  local v, e = engine:kv_get(M.NS, M.KEY)
  if v == nil and e then return nil, e end
  return v and v:match("^v1 (%x+)$") or (v and "?" or "")
end

-- engine_name(engine) -> "sqlite" | "postgresql" | ...
function M.engine_name(engine)
  return engine.engine and engine:engine() or "sqlite"
end

local function where_of(engine)
  return engine.path or "the token store"
end

-- Does the engine hold any secret (apps' or tokens')? Or nil, err.
local function holds_secrets(engine)
  local apps, e = engine:list_apps()
  if not apps then return nil, e end
  for _, a in ipairs(apps) do if a.client_secret then return true end end
  local toks; toks, e = engine:find_tokens {}
  if not toks then return nil, e end
  return #toks > 0
end

-- ---- The sealing handle ----

local function seal_fields(key, t, fields, aad)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  for _, f in ipairs(fields) do
    if type(out[f]) == "string" then out[f] = M.seal_value(key, out[f], aad) end
  end
  return out
end

-- The fix for a row whose secrets do not open: what to run, per kind of row.
function M.unreadable_hint(kind, row)
  if kind == "app" then
    return ("add it again with 'ghlua app add %s', or forget it with 'ghlua app remove %s'"):format(row.name, row.name)
  end
  local flag = row.resource_type == "Company" and "--company" or "--location"
  return ("log in again for it ('ghlua auth login' / 'ghlua auth pit add'), or 'ghlua auth logout %s %s'"):format(
    flag, row.resource_id)
end

-- Open the secret fields of row t in place; nil, err when one does not.
local function open_fields(self, t, fields, aad, what, hint)
  for _, f in ipairs(fields) do
    local v = t[f]
    if v ~= nil then
      if self.key and M.is_sealed(v) then
        local plain, why = M.open_value(self.key, v, aad)
        if not plain then
          return nil, err(("the %s of %s does not open with the store key (%s)"):format(f:gsub("_", " "), what, why),
            "the value was altered or copied from another row; " .. hint, "sealed")
        end
        t[f] = plain
      elseif self.key then
        return nil, err(("the %s of %s is stored in clear in a sealed store"):format(f:gsub("_", " "), what),
          "run 'ghlua store seal' (with " .. M.ENV .. " or " .. M.ENV_FILE .. " set) to seal it", "unsealed")
      elseif M.is_sealed(v) then
        return nil, err(("the %s of %s is sealed, and no key is set"):format(f:gsub("_", " "), what),
          "set " .. M.ENV .. " or " .. M.ENV_FILE .. " to the store's key", "no_key")
      end
    end
  end
  return t
end

local function open_app(self, a)
  return open_fields(self, a, M.APP_FIELDS, M.app_aad(a.name), "app " .. a.name, M.unreadable_hint("app", a))
end

local function open_token(self, r)
  return open_fields(self, r, M.TOKEN_FIELDS, M.token_aad(r.app, r.resource_id),
                     "token " .. r.app .. " " .. r.resource_id, M.unreadable_hint("token", r))
end

-- Open every row of a listing. A row that does not open stays listed
-- without its secrets, with unreadable = why (and unreadable_hint = the
-- fix), so one bad row never hides the others; the callers that need its
-- secrets refuse that row alone (ghl.auth).
local function open_list(self, rows, f, fields)
  for _, r in ipairs(rows) do
    local ok, e = f(self, r)
    if not ok then
      for _, k in ipairs(fields) do r[k] = nil end
      r.unreadable, r.unreadable_hint = E.is(e) and e.message or tostring(e), E.is(e) and e.hint or nil
    end
  end
  return rows
end

-- A handle without a key writes values in clear: refuse when the store
-- was sealed since it was opened (one kv_get), rather than write clear
-- values into a sealed store.
local function writable(self)
  if self.key then return true end
  local id, e = M.stored_id(self.native)
  if not id then return nil, e end
  if id ~= "" then
    return nil, err(("token store %s was sealed while this process ran; nothing was written"):format(where_of(self.native)),
      "run the command again with " .. M.ENV .. " or " .. M.ENV_FILE .. " set", "sealed_since")
  end
  return true
end

local methods = {}

function methods:put_app(t)
  local ok, e = writable(self)
  if not ok then return nil, e end
  if self.key and type(t) == "table" and t.name then t = seal_fields(self.key, t, M.APP_FIELDS, M.app_aad(t.name)) end
  return self.native:put_app(t)
end

function methods:put_token(t)
  local ok, e = writable(self)
  if not ok then return nil, e end
  if self.key and type(t) == "table" and t.app and t.resource_id then
    t = seal_fields(self.key, t, M.TOKEN_FIELDS, M.token_aad(t.app, t.resource_id))
  end
  return self.native:put_token(t)
end

function methods:commit_refresh(app, rid, fields)
  local ok, e = writable(self)
  if not ok then return nil, e end
  if self.key and type(fields) == "table" and type(app) == "string" and type(rid) == "string" then
    fields = seal_fields(self.key, fields, M.TOKEN_FIELDS, M.token_aad(app, rid))
  end
  return self.native:commit_refresh(app, rid, fields)
end

function methods:get_app(name)
  local a, e = self.native:get_app(name)
  if not a then return a, e end
  return open_app(self, a)
end

function methods:list_apps()
  local rows, e = self.native:list_apps()
  if not rows then return rows, e end
  return open_list(self, rows, open_app, M.APP_FIELDS)
end

function methods:get_token(app, rid)
  local r, e = self.native:get_token(app, rid)
  if not r then return r, e end
  return open_token(self, r)
end

function methods:find_tokens(q)
  local rows, e = self.native:find_tokens(q)
  if not rows then return rows, e end
  return open_list(self, rows, open_token, M.TOKEN_FIELDS)
end

-- fn gets this handle, so what it writes is sealed too.
function methods:transaction(fn)
  return self.native:transaction(function() return fn(self) end)
end

-- open_row(kind, row) -> row with its secrets opened, or nil, err: for
-- callers that read rows from the engine itself (store check).
function methods:open_row(kind, row)
  return (kind == "app" and open_app or open_token)(self, row)
end

function methods:sealed() return self.key ~= nil end

local MT = {
  __index = function(self, k)
    local m = methods[k]
    if m then return m end
    local engine = rawget(self, "native")
    local v = engine[k]
    if type(v) ~= "function" then return v end
    local f = function(_, ...) return v(engine, ...) end
    rawset(self, k, f)
    return f
  end,
  __tostring = function(self) return tostring(self.native) end,
}

-- wrap(engine [, opts]) -> handle. Reads the store's key check and the
-- key (key_from_env, or opts.key) and raises (kind "store") when they do
-- not fit: a sealed store with no key or another key, a PostgreSQL store
-- without a key, or (unless opts.unsealed_ok) a SQLite store holding
-- secrets in clear while a key is set. A key set on a store holding no
-- secrets yet seals it (its key check is written). Nothing else is ever
-- written here: a refused open leaves the store as it was.
-- handle.key_id, handle.key (nil when unsealed), handle.native (the engine).
-- With opts.inspect nothing is refused and nothing written: the handle
-- says how the key set fits (key_state: "match", "missing", "wrong" with
-- env_key_id, "bad" with key_error, or for an unsealed store "set" or
-- "none") and opens sealed values only with the right key.
function M.wrap(engine, opts)
  opts = opts or {}
  local name = M.engine_name(engine)
  local stored, e = M.stored_id(engine)
  if not stored then error(e, 0) end
  if opts.inspect then
    local h = { native = engine, engine_name = name, key_id = stored ~= "" and stored or nil }
    local ok, key = pcall(M.key_from_env)
    if not ok then
      h.key_state, h.key_error = "bad", E.is(key) and key.message or tostring(key)
    elseif stored == "" then
      h.key_state = key and "set" or "none"
    elseif not key then
      h.key_state = "missing"
    elseif M.key_id(key) ~= stored then
      h.key_state, h.env_key_id = "wrong", M.key_id(key)
    else
      h.key_state, h.key = "match", key
    end
    return setmetatable(h, MT)
  end
  local key, where = opts.key, "the key given"
  if key == nil then key, where = M.key_from_env() end
  local loc = where_of(engine)
  if stored ~= "" then
    if not key then
      E.raise { kind = "store", code = "no_key",
        message = ("token store %s is sealed (key id %s), and no key is set"):format(loc, stored),
        hint = "set " .. M.ENV .. " or " .. M.ENV_FILE .. " to its key" }
    end
    local id = M.key_id(key)
    if id ~= stored then
      E.raise { kind = "store", code = "wrong_key",
        message = ("%s is not the key of token store %s (key id %s; the store's is %s)"):format(where, loc, id, stored),
        hint = "set " .. M.ENV .. " or " .. M.ENV_FILE .. " to the key the store was sealed with" }
    end
  elseif name ~= "sqlite" and not key then
    E.raise { kind = "store", code = "no_key",
      message = ("a %s token store needs a key to seal its secrets, and %s is not set"):format(name, M.ENV),
      hint = "set " .. M.ENV .. " or " .. M.ENV_FILE .. "; " .. MAKE }
  elseif key then
    local any; any, e = holds_secrets(engine)
    if any == nil then error(e, 0) end
    if any and not opts.unsealed_ok then
      E.raise { kind = "store", code = "unsealed",
        message = ("token store %s holds its secrets in clear, and %s is set"):format(loc, where),
        hint = "encrypt them with 'ghlua store seal', or unset " .. M.ENV .. " and " .. M.ENV_FILE }
    end
    if not any then
      local ok; ok, e = engine:kv_put(M.NS, M.KEY, "v1 " .. M.key_id(key))
      if not ok then error(e, 0) end
      stored = M.key_id(key)
    else
      key = nil   -- opened unsealed, for 'ghlua store seal' and 'store info'
    end
  end
  return setmetatable({ native = engine, engine_name = name, key = stored ~= "" and key or nil,
                        key_id = stored ~= "" and stored or nil, key_state = stored ~= "" and "match" or "none" }, MT)
end

-- seal_in_place(handle, key) -> apps, tokens sealed: encrypts every
-- secret of an unsealed store with key and writes its key check, in one
-- transaction (all or nothing). The handle is sealed after. On a store
-- sealed already (handle opened with its key) it seals the values still
-- in clear (written by a process that opened the store before it was
-- sealed) and counts only those. Refused while a refresh is running (a
-- live claim): its commit would race the rewrite.
function M.seal_in_place(h, key)
  local engine = h.native
  local repair = h.key ~= nil
  if repair then key = h.key end
  local na, nt = 0, 0
  local function check(what, v)
    if M.is_sealed(v) and not repair then
      error(err(what .. " has a sealed value in an unsealed store", nil, "mixed"), 0)
    end
    return type(v) == "string" and not M.is_sealed(v)
  end
  local ok, e = engine:transaction(function(db)
    local toks = assert(db:find_tokens {})
    for _, r in ipairs(toks) do
      local c = db:claim_of(r.app, r.resource_id)
      if c and not c.reason then
        error(E.new { kind = "store", code = "busy",
          message = ("process %d is refreshing %s %s right now (phase %s); nothing was sealed"):format(
            c.pid or 0, r.app, r.resource_id, c.phase),
          hint = "run 'ghlua store seal' again once it is done" }, 0)
      end
    end
    for _, a in ipairs(assert(db:list_apps())) do
      if check("app " .. a.name, a.client_secret) then
        a.created_at, a.updated_at = nil, nil
        assert(db:put_app(seal_fields(key, a, M.APP_FIELDS, M.app_aad(a.name))))
        na = na + 1
      end
    end
    for _, r in ipairs(toks) do
      local clear = {}
      for _, f in ipairs(M.TOKEN_FIELDS) do
        if check("token " .. r.app .. " " .. r.resource_id, r[f]) then clear[#clear + 1] = f end
      end
      if #clear > 0 then
        local t = {}
        for k, v in pairs(r) do t[k] = v end
        for _, f in ipairs(clear) do t[f] = M.seal_value(key, r[f], M.token_aad(r.app, r.resource_id)) end
        assert(db:put_token(t))
        nt = nt + 1
      end
    end
    if not repair then assert(db:kv_put(M.NS, M.KEY, "v1 " .. M.key_id(key))) end
  end)
  if not ok then error(e, 0) end
  h.key, h.key_id = key, M.key_id(key)
  return na, nt
end

return M
