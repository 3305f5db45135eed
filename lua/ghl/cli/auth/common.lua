-- Helpers shared by the `ghlua auth` subcommands: which app the flags
-- name, which resource, and how a token is described (secrets redacted).
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local util = require "ghl.util"
local sys = require "ghl.sys"

local M = {}

-- The app for --app NAME, or --client-id/--redirect-uri with the secret
-- from GHL_CLIENT_SECRET, or the only/env app.
function M.app(o, usage)
  if o["client-id"] then
    if o.app then args.usage("give --app or --client-id, not both", usage) end
    local stored = auth.store():get_app(o["client-id"])
    local a = stored or { name = o["client-id"], client_id = o["client-id"],
                          client_secret = os.getenv("GHL_CLIENT_SECRET"), from_env = true }
    a.redirect_uri = o["redirect-uri"] or a.redirect_uri or os.getenv("GHL_REDIRECT_URI")
    return a
  end
  return auth.app(o.app)
end

-- {location=, company=, app=} from the flags.
function M.query(o, usage)
  if o.location and o.company then args.usage("give --location or --company, not both", usage) end
  return { location = o.location, company = o.company, app = o.app }
end

-- "in 23h 59m" / "2m ago"
function M.until_(t)
  if not t then return "never" end
  local d = math.floor(t - sys.time())
  local s = require("ghl.util").duration(d)
  return d >= 0 and ("in " .. s) or (s .. " ago")
end

function M.stamp(t)
  return t and os.date("!%Y-%m-%d %H:%M:%SZ", math.floor(t)) or "-"
end

-- A token row as shown to people and in --json: secrets redacted.
function M.public(row)
  return {
    app = row.app, kind = row.kind, type = row.resource_type, resource = row.resource_id,
    company_id = row.company_id, location_id = row.location_id, user_id = row.user_id,
    status = row.status, note = row.note, unreadable = row.unreadable, scopes = row.scope, requested_scopes = row.requested_scope,
    expires_at = row.expires_at, refreshed_at = row.refreshed_at, refreshed_by = row.refreshed_by,
    access_token = row.access_token and util.redact(row.access_token),
    refresh_token = row.refresh_token and util.redact(row.refresh_token),
    previous_refreshed_at = row.previous_refreshed_at,
  }
end

-- One-line summary of a stored token.
function M.line(row)
  return ("%s %s %s (app %s): %s, expires %s, token %s"):format(
    row.kind == "pit" and "PIT" or "token", row.resource_type, row.resource_id, row.app,
    row.status or "ok", row.kind == "pit" and "never" or M.until_(row.expires_at), util.redact(row.access_token or ""))
end

return M
