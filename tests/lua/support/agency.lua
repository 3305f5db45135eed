-- support.agency: an OAuth simulator with an agency (Company) app, the
-- default location and `n` more, and the agency login stored in a private
-- GHLUA_HOME (support.oauth), for fan-out tests:
--   local a = agency.start(19, "contacts.readonly contacts.write", {"--contacts", "5"})
--   a.locations      -> {{id, name}, ...} every location of the company
--   a.ghlua{...}, a.lua(code), a.sim, a.stop()   (as support.oauth)
--   a.chaos(rules)   -> PUT /__sim/chaos
--   a.requests(q)    -> GET /__sim/requests (decoded)
-- The agency token carries oauth.readonly, oauth.write and `scopes`;
-- location tokens minted from it carry the location scopes among them.
local oauth = require "support.oauth"
local http = require "ghl.http"

local M = {}

function M.start(n, scopes, extra)
  local argv = { "--auto-approve", "company", "--app-type", "Company", "--locations", tostring(n),
                 "--rate-max", "100000" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  local o = oauth.start(argv)
  o.add_app("oauth")
  local resp = assert(http.request { url = o.sim.url .. "/v2/oauth/chooselocation", query = {
    response_type = "code", client_id = o.client_id, redirect_uri = o.redirect_uri,
    scope = "oauth.readonly oauth.write " .. (scopes or "") } })
  local code = assert(resp.headers.location:match("code=([^&]+)"), "no code in the consent redirect")
  local r = o.ghlua { "auth", "exchange", code, "--app", "app1", "--user-type", "Company" }
  assert(r.code == 0, r.err)
  o.locations = o.sim.ready.locations
  function o.chaos(rules)
    local c = assert(http.request { method = "PUT", url = o.sim.url .. "/__sim/chaos", json = { rules = rules } })
    assert(c.status == 200, c.body)
  end
  function o.requests(q)
    return assert(assert(http.request { url = o.sim.url .. "/__sim/requests", query = q }):json()).requests
  end
  return o
end

return M
