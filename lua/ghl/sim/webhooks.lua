-- ghl.sim.webhooks: the simulator's webhook deliveries, signed like
-- HighLevel's (FACTS §9) with a key pair of its own (the caller's; `ghlua
-- sim` passes the user's development key, see ghl.webhooks.sim_key):
-- X-GHL-Signature, base64 Ed25519 over the raw body, and with legacy_rsa
-- an X-WH-Signature (RSA-SHA256, a generated 2048-bit key; HighLevel's is
-- 4096). Payloads are flat JSON with type, locationId, webhookId (a random
-- uuid) and timestamp (ISO-8601): ContactCreate, ContactUpdate,
-- ContactDelete, ContactTagUpdate (the contact as the API shows it),
-- INSTALL (appId, versionId, installType, companyId, locationId, userId,
-- companyName, isWhitelabelCompany) when an app is first installed on a
-- location or the agency: a Company consent sends one for the agency (no
-- locationId), then one per approved location; an install on a future
-- location has no userId (AppInstall.md's note). UNINSTALL (appId and
-- locationId, or companyId).
--
-- The payload builders (M.contact_event, M.install_event, ...) are the
-- one place event shapes are written: the emitter uses them for the
-- simulator's own events, and M.sample builds any event of M.TRIGGERS
-- (also types the simulator does not send by itself: opportunities,
-- notes, messages, PLAN_CHANGE, locations) from a simulator's seeded data,
-- for `ghlua webhook trigger`.
--
-- The simulator is single-threaded and must never wait for a receiver:
-- emit() only queues; pump(), called from the server loop between rounds,
-- starts deliveries with ghl.http.start and collects finished ones with
-- http.perform(0). A receiver answering 429 gets the event again after
-- retry_delay seconds, at most `retries` times (HighLevel: 6, ~10 min
-- apart); any other answer or a transport failure is final, as on
-- HighLevel. Without a URL, events are only counted and listed, not
-- encoded or signed (contact writes stay as cheap as before).
-- Routes (no Version, no token, not counted):
--   GET  /__sim/webhooks   public key, URL, counters, recent deliveries
--                          (webhookId, type, locationId, companyId,
--                          installType, userId, status, attempts, ...)
--   POST /__sim/webhooks   JSON event: sign and send it as it is (type
--                          required; webhookId, timestamp and locationId
--                          filled in when missing)
--   POST /__sim/uninstall  JSON {locationId | companyId [, clientId]}:
--                          uninstall the app(s) installed there (the
--                          company: the agency and every location it
--                          installed on), revoke their tokens, send
--                          UNINSTALL for each
-- new() raises a string when the configured key is unusable.
local crypto = require "ghl.crypto"
local webhooks = require "ghl.webhooks"
local reply = require "ghl.sim.reply"
local events = require "ghl.webhooks.events"

local M = {}
local Emitter = {}
Emitter.__index = Emitter

M.RECENT = 100          -- deliveries kept for GET /__sim/webhooks
M.MAX_INFLIGHT = 16
M.IDLE_WAIT = 0.25      -- longest server round while nothing is in flight
M.BUSY_WAIT = 0.01

-- new(cfg, state) -> emitter. cfg: url (nil: record only), key (PEM of an
-- Ed25519 private key; nil: generate one for this run), key_file (where
-- key came from, when it is the development key: shown, never the key),
-- legacy_rsa, retry_delay (seconds, default 600), retries (default 6),
-- timeout (default 10), log(line).
function M.new(cfg, state)
  cfg = cfg or {}
  local priv = cfg.key
  if not priv then
    priv = assert(crypto.generate_key("ed25519"))
  end
  local info, why, bad = webhooks.ed25519_private(priv)
  if bad == "type" then error("webhook key: expected an Ed25519 private key, got " .. why, 0) end
  if bad == "public" then error("webhook key: " .. why .. " (a private key is needed)", 0) end
  if not info then error("webhook key: " .. why, 0) end
  local e = setmetatable({
    state = state, url = cfg.url, private_key = priv, public_key = info.pem, public_spki = info.spki,
    key_file = cfg.key_file,
    retry_delay = cfg.retry_delay or 600, retries = cfg.retries or 6, timeout = cfg.timeout or 10,
    log = cfg.log, queue = {}, inflight = {}, n_inflight = 0, recent = {},
    stats = { emitted = 0, delivered = 0, rejected = 0, failed = 0, retried = 0 },
  }, Emitter)
  if cfg.legacy_rsa then
    e.rsa_private, e.rsa_public = assert(crypto.generate_key("rsa", 2048))
  end
  return e
end

function Emitter:note(line)
  if self.log then self.log("webhook " .. line) end
end

-- What GET /__sim/webhooks shows of an event besides its id and type.
local SHOWN = { "locationId", "companyId", "installType", "userId" }

local function describe(d, event)
  for _, k in ipairs(SHOWN) do
    if type(event[k]) == "string" then d[k] = event[k] end
  end
end

-- Give event a webhookId (a random uuid) and a timestamp (now, ISO-8601)
-- unless it has them. Returns event.
function M.stamp(state, event)
  event.webhookId = event.webhookId or state:random_uuid()
  event.timestamp = event.timestamp or reply.iso8601(state.time() * 1000)
  return event
end

-- Sign and queue one event (a table; webhookId and timestamp are added
-- when missing). Returns the delivery record.
function Emitter:emit(event)
  local state = self.state
  M.stamp(state, event)
  self.stats.emitted = self.stats.emitted + 1
  if not self.url then
    local d = { webhookId = event.webhookId, type = event.type, attempts = 0, status = "not sent" }
    describe(d, event)
    self.recent[#self.recent + 1] = d
    if #self.recent > M.RECENT then table.remove(self.recent, 1) end
    return d
  end
  local body = reply.encode(event)
  local headers = assert(webhooks.signature_headers(body, self.private_key, self.rsa_private))
  headers["Content-Type"] = "application/json"
  local d = { webhookId = event.webhookId, type = event.type, body = body, headers = headers,
    attempts = 0, due = state.now(), status = "queued" }
  describe(d, event)
  self.recent[#self.recent + 1] = d
  if #self.recent > M.RECENT then table.remove(self.recent, 1) end
  self.queue[#self.queue + 1] = d
  return d
end

-- ---- Payloads ----

-- A contact event: kind ContactCreate | ContactUpdate | ContactDelete |
-- ContactTagUpdate | ContactDndUpdate; shown is the contact as the API
-- presents it (ghl.sim.contacts.present).
function M.contact_event(kind, shown)
  local event = {}
  for k, v in pairs(shown) do event[k] = v end
  event.type = kind
  return event
end

-- INSTALL of client_id on a location (location_id) or on the agency (nil);
-- fields.future: an automatic install on a location added later. nil for
-- an unknown app.
function M.install_event(state, client_id, location_id, fields)
  local app = state:app(client_id)
  if not app then return nil end
  return { type = "INSTALL", appId = app.app_id, versionId = app.app_id,
    installType = location_id and "Location" or "Company", companyId = state.company.id,
    locationId = location_id, userId = not (fields and fields.future) and state.user_id or nil,
    companyName = state.company.name, isWhitelabelCompany = app.whitelabel or false }
end

-- UNINSTALL of client_id from a location or (location_id nil) the agency.
function M.uninstall_event(state, client_id, location_id)
  local app = state:app(client_id)
  return { type = "UNINSTALL", appId = app and app.app_id or client_id, locationId = location_id,
    companyId = not location_id and state.company.id or nil }
end

-- PLAN_CHANGE of client_id on a location (or the agency): plan ids are
-- 24 hex digits, as HighLevel's.
function M.plan_change_event(state, client_id, location_id)
  local app = state:app(client_id)
  return { type = "PLAN_CHANGE", appId = app and app.app_id or client_id, locationId = location_id,
    companyId = state.company.id, userId = state.user_id,
    currentPlanId = state:random_hex(12), newPlanId = state:random_hex(12) }
end

-- An opportunity event (OpportunityCreate, ...Update, ...Delete,
-- ...StageUpdate, ...StatusUpdate, ...MonetaryValueUpdate,
-- ...AssignedToUpdate: one shape, OpportunityCreate.md); shown is the
-- opportunity as the API presents it (ghl.sim.opportunities.present).
function M.opportunity_event(kind, shown)
  return { type = kind, locationId = shown.locationId, id = shown.id,
    assignedTo = shown.assignedTo ~= reply.null and shown.assignedTo or nil,
    contactId = shown.contactId, monetaryValue = shown.monetaryValue, name = shown.name,
    pipelineId = shown.pipelineId, pipelineStageId = shown.pipelineStageId, source = shown.source,
    status = shown.status, dateAdded = shown.createdAt }
end

-- A note event (NoteCreate, NoteUpdate, NoteDelete) about a note
-- {id, body, contactId, added_ms} of a contact in location_id.
function M.note_event(kind, note, location_id)
  return { type = kind, locationId = location_id, id = note.id, body = note.body, contactId = note.contactId,
    dateAdded = reply.iso8601(note.added_ms) }
end

-- An SMS event (InboundMessage, OutboundMessage) of message m {id,
-- conversationId, body, at_ms} with contact c.
function M.message_event(kind, m, c)
  return { type = kind, locationId = c.locationId, attachments = reply.array(), body = m.body,
    contactId = c.id, contentType = "text/plain", conversationId = m.conversationId,
    dateAdded = reply.iso8601(m.at_ms), direction = kind == "InboundMessage" and "inbound" or "outbound",
    messageType = "SMS", messageId = m.id, status = "delivered",
    source = kind == "OutboundMessage" and "app" or nil }
end

-- A location event (LocationCreate, LocationUpdate) of location loc.
function M.location_event(kind, state, loc)
  return { type = kind, id = loc.id, companyId = loc.company or state.company.id, name = loc.name,
    email = "frontdesk@" .. loc.id:lower() .. ".example.com" }
end

-- ---- Events ----

function Emitter:contact(kind, shown)
  return self:emit(M.contact_event(kind, shown))
end

function Emitter:install(client_id, location_id, fields)
  local event = M.install_event(self.state, client_id, location_id, fields)
  return event and self:emit(event)
end

function Emitter:uninstall(client_id, location_id)
  return self:emit(M.uninstall_event(self.state, client_id, location_id))
end

-- ---- Delivery ----

-- Record the outcome of a delivery attempt (resp or err).
function Emitter:finished(d, resp, err)
  local now = self.state.now()
  d.http_status, d.error = resp and resp.status or nil, err and tostring(err) or nil
  if resp and resp.status >= 200 and resp.status < 300 then
    d.status = "delivered"
    self.stats.delivered = self.stats.delivered + 1
  elseif resp and resp.status == 429 and d.attempts <= self.retries then
    d.status, d.due = "retrying", now + self.retry_delay
    self.stats.retried = self.stats.retried + 1
    self.queue[#self.queue + 1] = d
  elseif resp then
    d.status = "rejected"
    self.stats.rejected = self.stats.rejected + 1
  else
    d.status = "failed"
    self.stats.failed = self.stats.failed + 1
  end
  self:note(string.format("%s %s -> %s%s", d.type, d.webhookId, resp and tostring(resp.status) or d.error,
    d.status == "retrying" and string.format(" (retry in %gs)", self.retry_delay) or ""))
end

-- Start due deliveries and collect finished ones; never blocks.
function Emitter:pump()
  if #self.queue == 0 and self.n_inflight == 0 then return end
  local http = require "ghl.http"
  local now, i = self.state.now(), 1
  while i <= #self.queue and self.n_inflight < M.MAX_INFLIGHT do
    local d = self.queue[i]
    if d.due <= now then
      table.remove(self.queue, i)
      d.attempts, d.status = d.attempts + 1, "sending"
      local t, err = http.start { method = "POST", url = self.url, body = d.body, headers = d.headers,
        timeout = self.timeout }
      if t then
        self.inflight[t] = d
        self.n_inflight = self.n_inflight + 1
      else
        self:finished(d, nil, err)
      end
    else
      i = i + 1
    end
  end
  if self.n_inflight > 0 then
    for _, t in ipairs(http.perform(0) or {}) do
      local d = self.inflight[t]
      if d then
        self.inflight[t] = nil
        self.n_inflight = self.n_inflight - 1
        self:finished(d, t:response())
      end
    end
  end
end

-- How long the server loop may wait for requests before pump() is due.
function Emitter:wait_time()
  if self.n_inflight > 0 then return M.BUSY_WAIT end
  local wait, now = M.IDLE_WAIT, self.state.now()
  for _, d in ipairs(self.queue) do
    wait = math.min(wait, math.max(d.due - now, 0))
  end
  return wait
end

-- ---- Events of a named type (`ghlua webhook trigger`) ----

-- The first contact and opportunity of the default location (seeded).
local function seeded(state)
  local c = state:contacts_in(state.default_location)[1]
  local o
  for _, v in pairs(state:records("opportunities")) do o = v end
  return c, o
end

local function contact_sample(kind)
  return function(state)
    local ev = M.contact_event(kind, require("ghl.sim.contacts").present((seeded(state))))
    if kind == "ContactDndUpdate" then
      local on, off = { status = "active" }, { status = "inactive" }
      ev.dnd = true
      ev.dndSettings = { SMS = on, Call = off, Email = off, WhatsApp = off, GMB = off, FB = off }
    end
    return ev
  end
end

local function opportunity_sample(kind)
  return function(state)
    local _, o = seeded(state)
    return M.opportunity_event(kind, require("ghl.sim.opportunities").present(state, o))
  end
end

local function note_sample(kind)
  return function(state)
    local c = seeded(state)
    return M.note_event(kind, { id = state:new_id(), contactId = c.id, added_ms = state:now_ms(),
      body = "Called back about the quote; follow up next week." }, c.locationId)
  end
end

local function message_sample(kind)
  return function(state)
    local c = seeded(state)
    return M.message_event(kind, { id = state.rng:id(20), conversationId = state.rng:id(20),
      at_ms = state:now_ms(), body = kind == "InboundMessage" and "Hi, is Thursday at 3pm still free?"
        or "Yes, see you Thursday at 3pm." }, c)
  end
end

-- The app events name a location, or the agency when opts.agency.
local function app_sample(build)
  return function(state, opts)
    return build(state, state.app_order[1], not opts.agency and state.default_location or nil)
  end
end

-- name -> function(state, opts) -> event, for every type of
-- ghl.webhooks.events.NAMES (`trigger` lists them in that order). Payload
-- shapes: the builders above (HighLevel's docs, `docs/webhook
-- events/*.md`).
local SAMPLES = {
  ContactCreate = contact_sample "ContactCreate",
  ContactUpdate = contact_sample "ContactUpdate",
  ContactDelete = contact_sample "ContactDelete",
  ContactTagUpdate = contact_sample "ContactTagUpdate",
  ContactDndUpdate = contact_sample "ContactDndUpdate",
  OpportunityCreate = opportunity_sample "OpportunityCreate",
  OpportunityUpdate = opportunity_sample "OpportunityUpdate",
  OpportunityDelete = opportunity_sample "OpportunityDelete",
  OpportunityStageUpdate = opportunity_sample "OpportunityStageUpdate",
  OpportunityStatusUpdate = opportunity_sample "OpportunityStatusUpdate",
  OpportunityMonetaryValueUpdate = opportunity_sample "OpportunityMonetaryValueUpdate",
  OpportunityAssignedToUpdate = opportunity_sample "OpportunityAssignedToUpdate",
  NoteCreate = note_sample "NoteCreate",
  NoteUpdate = note_sample "NoteUpdate",
  NoteDelete = note_sample "NoteDelete",
  InboundMessage = message_sample "InboundMessage",
  OutboundMessage = message_sample "OutboundMessage",
  INSTALL = app_sample(function(state, cid, loc) return M.install_event(state, cid, loc) end),
  UNINSTALL = app_sample(M.uninstall_event),
  PLAN_CHANGE = app_sample(M.plan_change_event),
  LocationCreate = function(state) return M.location_event("LocationCreate", state,
      state:location(state.default_location)) end,
  LocationUpdate = function(state) return M.location_event("LocationUpdate", state,
      state:location(state.default_location)) end,
}
-- {name, build} in the order of NAMES.
M.TRIGGERS = {}
for i, name in ipairs(events.NAMES) do M.TRIGGERS[i] = { name, assert(SAMPLES[name], name) } end
local TRIGGER = {}
for _, t in ipairs(M.TRIGGERS) do TRIGGER[t[1]] = t[2] end

-- The TRIGGERS name for kind, ignoring case (and AppInstall/AppUninstall
-- /PlanChange, the docs' file names), or nil.
M.trigger_name = events.name

-- sample(kind, opts) -> event, with a new webhookId and the current
-- timestamp (M.stamp), or nil for a kind not in M.TRIGGERS. The data comes from a fresh
-- simulator, as `ghlua sim` would seed it (a random seed: new ids each
-- time): opts.location and opts.company its ids (defaults: the
-- simulator's), opts.client_id the app (default: a generated one),
-- opts.agency (INSTALL, UNINSTALL, PLAN_CHANGE of the agency: no
-- locationId), opts.random_bytes (default ghl.sys's).
function M.sample(kind, opts)
  opts = opts or {}
  local build = TRIGGER[kind]
  if not build then return nil end
  local random_bytes = opts.random_bytes or require("ghl.sys").random_bytes
  local app = require("ghl.sim").new { location = opts.location, company = opts.company,
    seed = string.unpack("<i8", assert(random_bytes(8))), random_bytes = random_bytes,
    contacts = 1, opportunities = 1, apps = { { client_id = opts.client_id } } }
  return M.stamp(app.state, build(app.state, opts))
end

-- ---- Routes ----

local function body_object(ctx)
  local b = ctx.req.body and ctx.req.body:match("%S") and reply.decode(ctx.req.body)
  if type(b) ~= "table" then reply.raise(400, "Expected a JSON object body") end
  return b
end

local function need_emitter(ctx)
  local e = ctx.state.webhooks
  if not e then reply.raise(404, "this simulator has no webhook emitter") end
  return e
end

local function show(ctx)
  local e = need_emitter(ctx)
  local list = reply.array()
  for _, d in ipairs(e.recent) do
    list[#list + 1] = { webhookId = d.webhookId, type = d.type, locationId = d.locationId, companyId = d.companyId,
      installType = d.installType, userId = d.userId, status = d.status, attempts = d.attempts,
      httpStatus = d.http_status, error = d.error }
  end
  return 200, { url = e.url or reply.null, publicKey = e.public_key, publicKeySpki = e.public_spki,
    keyFile = e.key_file,
    legacyRsa = e.rsa_public ~= nil, rsaPublicKey = e.rsa_public, stats = e.stats, queued = #e.queue,
    inFlight = e.n_inflight, deliveries = list }
end

local function send(ctx)
  local e = need_emitter(ctx)
  local event = body_object(ctx)
  if type(event.type) ~= "string" or event.type == "" then reply.raise(400, "type must be a non-empty string") end
  if event.locationId == nil and event.companyId == nil then event.locationId = ctx.state.default_location end
  local d = e:emit(event)
  return 202, { webhookId = d.webhookId, status = d.status }
end

-- Drop client_id's OAuth tokens for the location (or the agency).
local function revoke(state, client_id, location_id)
  for tok, rec in pairs(state.tokens) do
    if rec.source == "oauth" and rec.app == client_id and
        ((location_id and rec.kind == "location" and rec.location == location_id) or
         (not location_id and rec.kind == "company")) then
      state.tokens[tok] = nil
    end
  end
  for tok, r in pairs(state.refresh_tokens) do
    if r.client_id == client_id and ((location_id and r.auth_class == "Location" and r.location == location_id) or
        (not location_id and r.auth_class == "Company")) then
      state.refresh_tokens[tok] = nil
    end
  end
end

local function uninstall(ctx)
  local state = ctx.state
  local b = body_object(ctx)
  local loc, company, client = b.locationId, b.companyId, b.clientId
  if (loc == nil) == (company == nil) then reply.raise(400, "give locationId or companyId") end
  if company ~= nil and company ~= state.company.id then reply.raise(404, "no company " .. tostring(company)) end
  local done = reply.array()
  local function note(cid, location_id)
    revoke(state, cid, location_id)
    local d = state.webhooks and state.webhooks:uninstall(cid, location_id)
    done[#done + 1] = { clientId = cid, locationId = location_id, companyId = not location_id and company or nil,
      webhookId = d and d.webhookId or nil }
  end
  for _, cid in ipairs(state.app_order) do
    if client == nil or client == cid then
      local gone, company_gone = state:uninstall(cid, loc)
      for _, id in ipairs(gone) do note(cid, id) end
      if company_gone then note(cid, nil) end
    end
  end
  if #done == 0 then reply.raise(404, "no app is installed on " .. (loc and ("location " .. loc) or "the agency")) end
  return 200, { uninstalled = done }
end

M.routes = {
  { method = "GET", path = "/__sim/webhooks", handler = show },
  { method = "POST", path = "/__sim/webhooks", handler = send },
  { method = "POST", path = "/__sim/uninstall", handler = uninstall },
}
for _, r in ipairs(M.routes) do
  r.public, r.uncounted, r.family = true, true, "sim"
end

return M
