-- ghl.oauth.url: HighLevel's authorization ("chooselocation") link (FACTS
-- §1). authorize_url{...} builds one; check_url(url, {app=}) lints a pasted
-- one and returns its problems. authorize_url raises a ghl.error of kind
-- "oauth", code "invalid_request", field = the option at fault, for a
-- missing client id, a relative redirect URI or a bad option value, and the
-- kind "scope" error of ghl.scopes.parse (field "scopes") for unknown
-- scopes. check_url never raises for what a link contains; it raises kind
-- "oauth", code "not_a_url" only when the text is not a URL at all.
-- Options that are not a table are bugs and raise a string.
-- GHLUA_MARKETPLACE_BASE (e.g. http://127.0.0.1:PORT) replaces the scheme
-- and host of built links, and check_url accepts that host too.
local E = require "ghl.error"
local scopes = require "ghl.scopes"

local M = {}

M.HOST = "marketplace.gohighlevel.com"
M.WHITELABEL_HOST = "marketplace.leadconnectorhq.com"
M.PATH = "/v2/oauth/chooselocation"
M.LEGACY_PATH = "/oauth/chooselocation"

-- base(whitelabel) -> "https://host" for links, or GHLUA_MARKETPLACE_BASE.
function M.base(whitelabel)
  local b = os.getenv("GHLUA_MARKETPLACE_BASE")
  if b and b ~= "" then return (b:gsub("/+$", "")) end
  return "https://" .. (whitelabel and M.WHITELABEL_HOST or M.HOST)
end

-- Percent-encode everything but RFC 3986 unreserved characters.
local escape = require("ghl.util").urlencode
local unescape = require("ghl.util").urldecode

local function absolute(uri)
  return uri:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#%s]+") ~= nil
end

local function invalid(field, msg)
  E.raise { kind = "oauth", code = "invalid_request", field = field, where = "oauth.authorize_url", message = msg }
end

local function random_state()
  local bytes, err = require("ghl.sys").random_bytes(16)
  if not bytes then error(err, 0) end
  return require("ghl.util").hex(bytes)
end

-- authorize_url{client_id=, redirect_uri=, scopes= (string or array, groups
-- allowed), state= (default: 16 random bytes as hex; false: none),
-- whitelabel=, login_window="self", version_id=, legacy_path=, base=}
-- -> url, state. Parameters come in a fixed order; the scope list is
-- space-separated, encoded as %20.
function M.authorize_url(o)
  if type(o) ~= "table" then error("authorize_url: expected a table of options, got " .. type(o), 2) end
  local cid, ru = o.client_id, o.redirect_uri
  if type(cid) ~= "string" or cid == "" then
    invalid("client_id", "the client id is missing: copy it from the app's Auth page in the marketplace portal")
  end
  if cid:find("%s") then invalid("client_id", "the client id '" .. cid .. "' contains spaces") end
  if cid:find("[%c%%]") then
    invalid("client_id", "the client id " .. string.format("%q", cid) .. " holds a control character or a '%':"
      .. " copy it as the app's Auth page shows it, not URL-encoded")
  end
  if type(ru) ~= "string" or ru == "" then
    invalid("redirect_uri", "the redirect URI is missing: give one registered on the app")
  end
  if not absolute(ru) or ru:find("[%s%c]") then
    invalid("redirect_uri", "the redirect URI '" .. ru .. "' is not an absolute http(s) URL: give scheme, host and path"
      .. " exactly as registered on the app (e.g. http://127.0.0.1:8080/callback)")
  end
  local list, err = scopes.parse(o.scopes or "")
  if not list then err.field = "scopes"; error(err, 0) end
  if o.login_window ~= nil and o.login_window ~= "self" then
    invalid("login_window", "the login window mode must be 'self' (or left out for a new tab), not '" .. tostring(o.login_window) .. "'")
  end
  local state = o.state
  if state == nil then state = random_state() end
  if state ~= false and (type(state) ~= "string" or state == "") then invalid("state", "the state must be a non-empty string") end
  if o.version_id ~= nil and (type(o.version_id) ~= "string" or not o.version_id:match("^[^%s%c%%]+$")) then
    invalid("version_id", "the version id must be a non-empty string without spaces, control characters or '%'")
  end
  local q = {
    "response_type=code",
    "client_id=" .. escape(cid),
    "redirect_uri=" .. escape(ru),
    "scope=" .. escape(table.concat(list, " ")),
  }
  if state then q[#q + 1] = "state=" .. escape(state) end
  if o.login_window then q[#q + 1] = "loginWindowOpenMode=self" end
  if o.version_id then q[#q + 1] = "version_id=" .. escape(o.version_id) end
  local base = o.base or M.base(o.whitelabel)
  return base .. (o.legacy_path and M.LEGACY_PATH or M.PATH) .. "?" .. table.concat(q, "&"), state or nil
end

---- The link linter ----

local KNOWN = { response_type = true, client_id = true, redirect_uri = true, scope = true, state = true,
                loginWindowOpenMode = true, version_id = true }
local REQUIRED = { "response_type", "client_id", "redirect_uri", "scope" }

-- Split a URL into {scheme=, authority=, path=, params={name -> {raw=, value=, count=}}, order={...}},
-- guessed=true when "https://" was missing; raise when it is not a URL.
local function split(url)
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  local guessed
  if not scheme and url:match("^[%w.-]+%.%a%a+[:/?]") then scheme, rest, guessed = "https", url, true end
  if not scheme then
    E.raise { kind = "oauth", code = "not_a_url", where = "oauth.check_url",
              message = "not a URL: '" .. url .. "'; paste the whole authorization link, starting with https://" }
  end
  local authority, path, query = rest:match("^([^/?#]*)([^?#]*)%??([^#]*)")
  local link = { scheme = scheme:lower(), authority = authority:gsub("^.*@", ""):lower(), path = path,
                 params = {}, order = {}, guessed = guessed }
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = unescape(k)
    local p = link.params[k]
    if p then
      p.count = p.count + 1
    else
      p = { raw = v, value = unescape(v), count = 1 }
      link.params[k] = p
      link.order[#link.order + 1] = k
    end
  end
  return link
end

-- Was parameter k, whose value is `value` once decoded, encoded twice?
-- Its value still holds %XX escapes, except where they may belong to it:
-- the state is opaque, and a redirect URI may carry escapes of its own
-- (it was encoded twice when only a second decoding makes it absolute).
local function encoded_twice(k, value)
  if k == "state" then return false end
  if k == "redirect_uri" then return not absolute(value) and absolute(unescape(value)) end
  return value:find("%%%x%x") ~= nil
end

-- A parameter name that is probably a typo of a known one.
local function similar(name, known)
  local a, b = name:lower():gsub("[^%a]", ""), known:gsub("[^%a]", "")
  local d = scopes.distance(a, b, 2)
  return d <= 1 or (d <= 2 and #b >= 8) or a:sub(1, #b) == b or (#a >= 5 and b:sub(1, #a) == a)
end

local function authority_of(base)
  return (base:match("^%a[%w+.-]*://([^/?#]*)") or ""):lower()
end

-- check_url(url, {app = {client_id=, redirect_uri=, user_type=, whitelabel=}})
-- -> problems, link. Each problem is {code=, level="error"|"warning"|"note",
-- message=, fix=, param=?}; the list is empty for a clean link. link has
-- the parsed parts and the scopes found (link.scopes).
function M.check_url(url, opts)
  if type(url) ~= "string" then error("check_url: expected a URL string, got " .. type(url), 2) end
  local app = (opts or {}).app or {}
  local out = {}
  local function add(level, code, message, fix, param)
    out[#out + 1] = { level = level, code = code, message = message, fix = fix, param = param }
  end
  local link = split(url:match("^%s*(.-)%s*$"))
  local params = link.params
  local good_host = app.whitelabel and M.WHITELABEL_HOST or M.HOST
  local good = "https://" .. good_host .. M.PATH

  -- Where the link points.
  if link.guessed then
    add("warning", "no_scheme", "the link has no scheme", "start it with https://")
  end
  local hosts = { [M.HOST] = true, [M.WHITELABEL_HOST] = true }
  local env_base = os.getenv("GHLUA_MARKETPLACE_BASE")
  local local_host = env_base and env_base ~= "" and authority_of(env_base)
  local a = link.authority
  if hosts[a] and link.scheme ~= "https" then
    add("error", "not_https", "the link uses " .. link.scheme .. "://", "use https://" .. a)
  elseif not hosts[a] and a ~= local_host then
    local what = "is not HighLevel's marketplace"
    if a:match("^services%.") or a:match("^rest%.") then what = "is the API host, not the consent page"
    elseif a:match("gohighlevel%.com$") or a:match("leadconnectorhq%.com$") then what = "is not the marketplace host (the consent page is on marketplace.*)"
    end
    add("error", "wrong_host", string.format("the host '%s' %s", a, what),
        string.format("use %s (%s)", good, app.whitelabel and "white-label app" or "marketplace.leadconnectorhq.com for a white-label app"))
  end
  if link.path == M.LEGACY_PATH then
    add("warning", "legacy_path", "the link uses the old path " .. M.LEGACY_PATH, "use " .. M.PATH .. " (HighLevel's docs since 2026-05)")
  elseif link.path ~= M.PATH then
    add("error", "wrong_path", string.format("the path '%s' is not the consent page", link.path), "use " .. M.PATH)
  end

  -- Parameters: repeated, double-encoded, missing, stray spaces, unknown.
  for _, k in ipairs(link.order) do
    local p = params[k]
    if p.count > 1 then
      add("error", "duplicate_parameter", string.format("the parameter '%s' appears %d times", k, p.count),
          "keep one '" .. k .. "='", k)
    end
    if p.raw:find("%%25%x%x") and encoded_twice(k, p.value) then
      add("error", "double_encoded", string.format("'%s' is encoded twice (%s)", k, p.raw:match("%%25%x%x")),
          "encode it once: a space is %20 or +, a slash / or %2F", k)
      p.value = unescape(p.value)
    end
  end
  for _, k in ipairs(REQUIRED) do
    if not params[k] or params[k].value:match("^%s*$") then
      local fix = "add " .. k .. "=" .. (k == "response_type" and "code" or app[k] or "…")
      for _, other in ipairs(link.order) do
        if not KNOWN[other] and similar(other, k) then fix = string.format("rename '%s' to '%s'", other, k) end
      end
      add("error", "missing_parameter", "the required parameter '" .. k .. "' is missing or empty", fix, k)
    end
  end
  for _, k in ipairs(link.order) do
    local p = params[k]
    if k ~= "scope" and p.value ~= p.value:match("^%s*(.-)%s*$") then
      add("error", "stray_space", string.format("'%s' has spaces around its value", k), "remove them", k)
    end
    if not KNOWN[k] then
      add("note", "unknown_parameter", string.format("the parameter '%s' is not one HighLevel reads", k),
          "remove it (known: response_type, client_id, redirect_uri, scope, state, loginWindowOpenMode, version_id)", k)
    end
  end
  local function value(k) return params[k] and params[k].value:match("^%s*(.-)%s*$") end

  local rt = value("response_type")
  if rt and rt ~= "" and rt ~= "code" then
    add("error", "bad_response_type", "response_type is '" .. rt .. "'", "use response_type=code", "response_type")
  end
  local mode = value("loginWindowOpenMode")
  if mode and mode ~= "self" then
    add("warning", "bad_login_window", "loginWindowOpenMode is '" .. mode .. "'", "use loginWindowOpenMode=self or leave it out", "loginWindowOpenMode")
  end

  local cid = value("client_id")
  if cid and cid ~= "" then
    if app.client_id and cid ~= app.client_id then
      if app.client_id:sub(1, #cid + 1) == cid .. "-" then
        add("error", "client_id_suffix", "the client id '" .. cid .. "' lacks its -suffix", "use client_id=" .. app.client_id, "client_id")
      else
        add("error", "client_id_mismatch", string.format("the client id '%s' is not the app's (%s)", cid, app.client_id),
            "use client_id=" .. app.client_id, "client_id")
      end
    elseif not cid:find("-", 2, true) then
      add("error", "client_id_suffix", "the client id '" .. cid .. "' has no -suffix",
          "copy the full client id from the portal, e.g. 68a2fd84fab6670f45220ebf-megyp358", "client_id")
    end
  end

  local ru = value("redirect_uri")
  if ru and ru ~= "" then
    if not absolute(ru) or ru:find("[%s%c]") then
      add("error", "redirect_not_absolute", "the redirect URI '" .. ru .. "' is not an absolute http(s) URL",
          "use the full URI registered on the app, with scheme and host" .. (app.redirect_uri and (": " .. app.redirect_uri) or ""), "redirect_uri")
    elseif app.redirect_uri and ru ~= app.redirect_uri then
      add("error", "redirect_mismatch", string.format("the redirect URI '%s' is not the app's (%s)", ru, app.redirect_uri),
          "use redirect_uri=" .. app.redirect_uri .. " (it must match a registered URI exactly)", "redirect_uri")
    end
  end

  -- Scopes.
  link.scopes = {}
  local sp = params.scope
  if sp and not sp.value:match("^%s*$") then
    local v = sp.value
    if v:find(",") then
      add("error", "comma_separator", "the scope list uses commas", "separate scopes with single spaces (%20 or +)", "scope")
    end
    if v:find("^%s") or v:find("%s$") or v:find("%s%s") or v:find("[\t\r\n]") then
      add("error", "stray_space", "the scope list has leading, trailing or repeated spaces",
          "separate scopes with single spaces and none at the ends", "scope")
    end
    local seen = {}
    for name in v:gmatch("[^%s,]+") do
      local row = scopes.info(name)
      if row and row.requestable then
        if seen[name] then
          add("warning", "duplicate_scope", "the scope '" .. name .. "' is listed twice", "list it once", "scope")
        else
          seen[name] = true
          link.scopes[#link.scopes + 1] = name
        end
      else
        local g = not name:find("[./]") and scopes.group(name)
        if g then
          add("error", "unknown_scope", string.format("'%s' is a ghlua group name, not a scope", name),
              "list its scopes: " .. table.concat(g.scopes, " "), "scope")
        else
          local sugg = scopes.suggest(name)
          add("error", "unknown_scope", "unknown scope " .. scopes.describe(name),
              #sugg > 0 and ("use " .. table.concat(sugg, " or ") .. " or remove it") or "remove it ('ghlua scopes' lists them)", "scope")
        end
      end
    end
  end

  -- Token types: Company-only scopes cannot be granted to a Location app.
  local agency, location_only = scopes.misfits(link.scopes, "Location"), {}
  for _, s in ipairs(link.scopes) do
    if scopes.info(s).tokens == "Location" then location_only[#location_only + 1] = s end
  end
  local user_type = app.user_type
  if user_type == "Location" and #agency > 0 then
    add("error", "agency_scope", "agency-only (Company) scopes on a sub-account (Location) app: " .. table.concat(agency, " "),
        "remove them, or make the app's target user Agency", "scope")
  elseif not user_type and #agency > 0 and #location_only > 0 then
    add("note", "mixed_token_types", string.format("agency-only scopes (%s) mixed with sub-account-only scopes (%s):"
          .. " right for an agency (Company) app, which gets location tokens through oauth.write, but a sub-account"
          .. " app cannot be granted the agency-only ones", table.concat(agency, " "), table.concat(location_only, " ")),
        "for a sub-account (Location) app drop the agency-only scopes; give the app's user type to check it", "scope")
  end

  -- White-label hosts.
  if app.whitelabel == true and a == M.HOST then
    add("error", "whitelabel_host", "the app is white-label but the link uses " .. M.HOST
          .. " (HighLevel then shows \"No integration found with the ID\")", "use https://" .. M.WHITELABEL_HOST .. M.PATH)
  elseif app.whitelabel == false and a == M.WHITELABEL_HOST then
    add("note", "whitelabel_host_unneeded", "the link uses the white-label host " .. M.WHITELABEL_HOST .. " for an app not marked white-label",
        "use https://" .. M.HOST .. M.PATH .. " unless the listing is white-label")
  end
  return out, link
end

return M
