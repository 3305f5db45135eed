-- ghl.sim.consent: the marketplace's install (consent) screen, FACTS §1, on
-- both paths, with no Version and no token:
--   GET  /v2/oauth/chooselocation and /oauth/chooselocation
--        ?response_type=code&client_id=…&redirect_uri=…&scope=a%20b[&state=…]
--   POST /v2/oauth/chooselocation/approve and /oauth/chooselocation/approve
--        (the picker's form: the same fields plus action=approve|deny and
--        location=ID (install on that sub-account) or location=company
--        (install on the agency) with approveAllLocations=true, or
--        approvedLocations=ID (repeated, or comma separated; none: the
--        agency alone), and installToFutureLocations=true)
-- The request is checked in HighLevel's order; a failure is an HTML page and
-- never a redirect: an unknown client id gives 404 "No integration found
-- with the ID: <appId>" (appId = the client id before '-'), a redirect URI
-- not registered on the app or a response_type other than code gives 400.
-- Then, as on HighLevel after "Allow & Install", a scope list that is empty,
-- names a scope outside the app's configured set or one not valid for its
-- target user gives 400 "This integration cannot be added, please contact
-- the developer!". Every error page also carries a "Simulator:" line naming
-- the exact cause. Whitelabel apps opened on the standard host cannot be
-- told apart on loopback, so that check is skipped.
--
-- Without auto-approve the GET shows a location picker (the company's
-- locations, plus for Company-type apps the agency, with a checkbox per
-- location, "all sub-accounts" and "future sub-accounts"); its form posts
-- to the approve path, which answers 302 to redirect_uri?code=…[&state=…].
-- With state.oauth.auto_approve the GET itself answers that 302:
--   a location id      install on that sub-account (a Location token)
--   "company"          install on the agency, approving every location and
--                      future locations (approveAllLocations,
--                      installToFutureLocations)
--   "company:ID,ID"    install on the agency, approving those locations
--                      only, and no future locations
--   "default"          the default location for Location-type apps,
--                      "company" for Company-type ones
-- A Company consent installs the app on the agency and on each approved
-- location, with one INSTALL webhook for the agency and one per location
-- (ghl.sim.state install_company); its code exchanges for a Company
-- token. With state.oauth.deny, or the picker's Cancel button, the 302
-- carries error=access_denied and error_description instead. state is
-- echoed only when given. Codes are random, single-use, expire after
-- state.oauth.code_ttl seconds (600) and are bound to the client, redirect
-- URI, location or company, and scopes.
local reply = require "ghl.sim.reply"
local scopes_mod = require "ghl.sim.scopes"
local oauth = require "ghl.sim.oauth"

local M = {}

local esc = reply.html_escape

M.NO_APP = "No integration found with the ID: %s"
M.CANNOT_ADD = "This integration cannot be added, please contact the developer!"
M.BAD_REDIRECT = "The redirect URI is not registered for this integration."
M.BAD_RESPONSE_TYPE = "Invalid response type: only response_type=code is supported."
M.NO_LOCATION = "Please choose an account to install this integration on."
M.DENIED = "The user did not approve the installation"

local STYLE = [[
body{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0;color:#111827}
main{max-width:36rem;margin:3rem auto;background:#fff;border-radius:8px;padding:2rem;box-shadow:0 1px 3px #0002}
h1{font-size:1.3rem;margin-top:0}.error{color:#b91c1c;font-weight:600}
.sim{color:#6b7280;font-size:.85rem;border-top:1px solid #e5e7eb;padding-top:.8rem}
label{display:block;padding:.5rem;border:1px solid #e5e7eb;border-radius:6px;margin:.4rem 0}
fieldset.bulk{margin:.2rem 0 .8rem 1.6rem;max-height:14rem;overflow:auto}
fieldset.bulk label{padding:.3rem .5rem}
label small{display:block;color:#6b7280;margin-left:1.6rem}
ul.scopes{font-size:.85rem;max-height:10rem;overflow:auto}
button{padding:.6rem 1.2rem;border-radius:6px;border:0;margin-right:.5rem;cursor:pointer}
button[value=approve]{background:#2563eb;color:#fff}
]]

local function page(title, inner)
  return table.concat {
    '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>', esc(title),
    ' | HighLevel (ghlua sim)</title>\n<style>', STYLE, '</style></head>\n<body><main>\n',
    inner, '\n</main></body>\n</html>\n' }
end

-- An error page; why goes into the "Simulator:" line.
local function fail(ctx, status, message, why)
  ctx.state:count_oauth("consent_errors")
  local r = reply.html(status, page("Error", string.format(
    '<h1>Something went wrong</h1>\n<p class="error" id="error">%s</p>\n<p class="sim" id="sim-detail">Simulator: %s</p>',
    esc(message), esc(why))))
  return r
end

-- url plus query pairs, after any query it already has.
local function with_query(url, pairs_list)
  local q = reply.query_string(pairs_list)
  if q == "" then return url end
  local base, frag = url:match("^([^#]*)(.*)$")
  return base .. (base:find("?", 1, true) and "&" or "?") .. q .. frag
end

local function given(v)
  return type(v) == "string" and v ~= "" and v or nil
end

-- The request checks before the picker: returns app, or nil, error page.
local function check(ctx, q)
  local state = ctx.state
  local id = q.client_id
  if not given(id) then
    return nil, fail(ctx, 404, M.NO_APP:format("undefined"), "the client_id parameter is missing")
  end
  local app = state:app(id)
  if not app then
    return nil, fail(ctx, 404, M.NO_APP:format(id:match("^[^-]*")), "no app has the client id " .. id)
  end
  local ok = false
  for _, u in ipairs(app.redirect_uris) do
    if u == q.redirect_uri then ok = true end
  end
  if not ok then
    return nil, fail(ctx, 400, M.BAD_REDIRECT, string.format("redirect_uri %s is not one of the app's: %s",
      given(q.redirect_uri) or "(missing)", table.concat(app.redirect_uris, ", ")))
  end
  if q.response_type ~= "code" then
    return nil, fail(ctx, 400, M.BAD_RESPONSE_TYPE,
      "response_type is " .. (given(q.response_type) or "(missing)"))
  end
  return app
end

-- The requested scopes (space or '+' separated), or nil, why.
local function requested_scopes(app, text)
  local list = scopes_mod.split(text, "%s+")
  if #list == 0 then return nil, "the scope parameter is empty" end
  for _, s in ipairs(list) do
    if not scopes_mod.known(s) then return nil, s .. " is not a HighLevel scope" end
    if not app.scope_set[s] then return nil, s .. " is not in the app's configured scopes" end
    if not scopes_mod.valid_for(s, app.user_type) then
      return nil, s .. " is not available to an app whose target user is " .. app.user_type
    end
  end
  return list
end

local function deny(ctx, q)
  ctx.state:count_oauth("consent_denied")
  return reply.redirect(with_query(q.redirect_uri, { { "error", "access_denied" },
    { "error_description", M.DENIED }, { "state", given(q.state) } }))
end

-- The consent an auto-approve setting stands for (see the header): {location
-- = ID}, {company = true, approved = "all" | {ID, ...}, future = bool} or
-- {default = true}; nil, why when v is none of them. Ids are not looked up.
function M.parse_choice(v)
  if v == "default" then return { default = true } end
  if v == "company" then return { company = true, approved = "all", future = true } end
  if type(v) ~= "string" then return nil, "expected a location id, company, company:ID,ID or default" end
  local list = v:match("^company:(.*)$")
  if list then
    local ids = {}
    for id in list:gmatch("[^,%s]+") do
      if not id:match("^[%w_%-]+$") then return nil, "'" .. id .. "' is not a location id" end
      ids[#ids + 1] = id
    end
    if #ids == 0 then return nil, "company: needs at least one location id (company alone approves them all)" end
    return { company = true, approved = ids, future = false }
  end
  if not v:match("^[%w_%-]+$") then return nil, "'" .. v .. "' is not a location id" end
  return { location = v }
end

-- The ids in choice.approved that are not locations of the company.
function M.unknown_locations(state, choice)
  local out = {}
  if type(choice.approved) == "table" then
    for _, id in ipairs(choice.approved) do
      local loc = state:location(id)
      if not loc or loc.company ~= state.company.id then out[#out + 1] = id end
    end
  end
  return out
end

-- Install app as choice says ({location = ID} or {company = true,
-- approved, future}: see parse_choice) and redirect with a code.
local function approve(ctx, app, q, choice)
  local state = ctx.state
  local list, why = requested_scopes(app, q.scope)
  if not list then return fail(ctx, 400, M.CANNOT_ADD, why) end
  local grant
  if choice.company then
    local unknown = M.unknown_locations(state, choice)
    if #unknown > 0 then
      return fail(ctx, 400, M.NO_LOCATION, "no location of company " .. state.company.id
        .. " has the id " .. table.concat(unknown, ", "))
    end
    grant = { auth_class = "Company", scopes = list }
    state:install_company(app.client_id, list, oauth.scopes_for(list, "Location"), choice.approved, choice.future)
  else
    local loc = given(choice.location) and state:location(choice.location)
    if not loc or loc.company ~= state.company.id then
      return fail(ctx, 400, M.NO_LOCATION, "no location of company " .. state.company.id
        .. " has the id " .. tostring(choice.location))
    end
    grant = { auth_class = "Location", location = loc.id, scopes = oauth.scopes_for(list, "Location") }
    state:install(app.client_id, loc.id, grant.scopes)
  end
  grant.client_id, grant.company, grant.user_id = app.client_id, state.company.id, state.user_id
  grant.redirect_uri = q.redirect_uri
  local code = state:new_code(grant)
  state:count_oauth("consent_approved")
  return reply.redirect(with_query(q.redirect_uri, { { "code", code }, { "state", given(q.state) } }))
end

local function picker(ctx, app, q, action)
  local state = ctx.state
  local h = {}
  local function add(...) for _, s in ipairs { ... } do h[#h + 1] = s end end
  add('<h1>Choose Account</h1>\n<p><strong>', esc(app.name or "Sim App"), '</strong> (client id <code>',
    esc(app.client_id), '</code>) would like to access:</p>\n<ul class="scopes">')
  for _, s in ipairs(scopes_mod.split(q.scope, "%s+")) do add("<li><code>", esc(s), "</code></li>") end
  add('</ul>\n<form method="post" action="', esc(action), '">\n')
  for _, k in ipairs { "response_type", "client_id", "redirect_uri", "scope", "state" } do
    if q[k] ~= nil then
      add('<input type="hidden" name="', k, '" value="', esc(q[k]), '">\n')
    end
  end
  add("<fieldset><legend>Install on</legend>\n")
  local checked = ' checked'
  if app.user_type == "Company" then
    -- the agency, and which of its sub-accounts get the app too
    add('<label><input type="radio" name="location" value="company"', checked, '> ',
      esc(state.company.name), ' (agency)<small>', esc(state.company.id), '</small></label>\n',
      '<fieldset class="bulk"><legend>Sub-accounts to install on</legend>\n',
      '<label><input type="checkbox" name="approveAllLocations" value="true" checked> All sub-accounts</label>\n')
    for _, loc in ipairs(state:company_locations()) do
      add('<label><input type="checkbox" name="approvedLocations" value="', esc(loc.id), '"> ',
        esc(loc.name), '<small>', esc(loc.id), '</small></label>\n')
    end
    add('<label><input type="checkbox" name="installToFutureLocations" value="true" checked>',
      ' Also install on sub-accounts created later</label>\n</fieldset>\n')
    checked = ""
  end
  for _, loc in ipairs(state:company_locations()) do
    add('<label><input type="radio" name="location" value="', esc(loc.id), '"', checked, '> ',
      esc(loc.name), loc.active and "" or " (inactive)", '<small>', esc(state:address(loc)),
      ' · ', esc(loc.id), '</small></label>\n')
    checked = ""
  end
  add('</fieldset>\n<p><button type="submit" name="action" value="approve">Allow &amp; Install</button>',
    '<button type="submit" name="action" value="deny">Cancel</button></p>\n</form>')
  state:count_oauth("consent_shown")
  return reply.html(200, page("Choose Account", table.concat(h)))
end

local function choose(ctx)
  local state, q = ctx.state, ctx.query
  local app, err = check(ctx, q)
  if not app then return err end
  local auto = state.oauth.auto_approve
  if auto then
    if state.oauth.deny then return deny(ctx, q) end
    local choice = M.parse_choice(auto) or { location = auto }
    if choice.default then
      choice = app.user_type == "Company" and M.parse_choice("company") or { location = state.default_location }
    end
    return approve(ctx, app, q, choice)
  end
  return picker(ctx, app, q, ctx.req.path:gsub("/+$", "") .. "/approve")
end

local function yes(v)
  return v == "true" or v == "on" or v == "1"
end

local function approve_form(ctx)
  local state = ctx.state
  local f = reply.form_decode(ctx.req.body, { approvedLocations = true })
  local app, err = check(ctx, f)
  if not app then return err end
  if f.action == "deny" or state.oauth.deny then return deny(ctx, f) end
  if f.location ~= "company" then return approve(ctx, app, f, { location = f.location }) end
  local ids = {}
  for _, v in ipairs(f.approvedLocations or {}) do
    for id in v:gmatch("[^,%s]+") do ids[#ids + 1] = id end
  end
  return approve(ctx, app, f, { company = true, approved = yes(f.approveAllLocations) and "all" or ids,
    future = yes(f.installToFutureLocations) })
end

M.routes = {}
for _, base in ipairs { "/v2/oauth/chooselocation", "/oauth/chooselocation" } do
  M.routes[#M.routes + 1] = { method = "GET", path = base, handler = choose, public = true, family = "oauth" }
  M.routes[#M.routes + 1] = { method = "POST", path = base .. "/approve", handler = approve_form,
    public = true, family = "oauth" }
end

return M
