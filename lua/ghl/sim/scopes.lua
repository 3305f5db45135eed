-- ghl.sim.scopes: the OAuth scope catalogue the simulator knows, with the
-- token types each scope is valid for, derived when it loads from the
-- library's catalogue (ghl.scopes.data, FACTS §11 scopes.tsv): one source.
-- An app targeting sub-accounts (user type Location) may only request
-- scopes a Location token can hold; an agency app (Company) may request any
-- of them, since it mints Location tokens through /oauth/locationToken.
-- The rules that turn a row into token types:
--   requestable = false (locations.internal-access-only, an internal
--     marker; locations/write, a documented typo): not known at all;
--   tokens "Location": Location only; "Company": Company only, unless
--     seen_location (FACTS §13.12: documents_contracts*, likely both);
--   tokens "both" or "unknown" ("?"): valid for either type.
-- The data holds every scope the simulator needs: there is no list of
-- differences to keep. Nothing here raises.
local M = {}

-- scope -> {Location = bool, Company = bool}
M.TYPES = {}
-- every known scope, sorted
M.ALL = {}

for _, r in ipairs(require "ghl.scopes.data") do
  if r.requestable ~= false then
    M.TYPES[r.scope] = { Location = r.tokens ~= "Company" or r.seen_location == true,
                         Company = r.tokens ~= "Location" }
  end
end
for s in pairs(M.TYPES) do M.ALL[#M.ALL + 1] = s end
table.sort(M.ALL)

function M.known(scope)
  return M.TYPES[scope] ~= nil
end

-- May an app whose target user is user_type ("Location" | "Company")
-- request scope? Agency apps may request every known scope.
function M.valid_for(scope, user_type)
  local t = M.TYPES[scope]
  if not t then return false end
  if user_type == "Company" then return true end
  return t.Location
end

-- May a token of this class ("Location" | "Company") hold scope?
function M.holds(scope, auth_class)
  local t = M.TYPES[scope]
  return t ~= nil and t[auth_class] == true
end

-- Every scope an app of user_type may request, sorted.
function M.all_for(user_type)
  local out = {}
  for _, s in ipairs(M.ALL) do
    if M.valid_for(s, user_type) then out[#out + 1] = s end
  end
  return out
end

-- Split a scope list. sep: a Lua character class of separators
-- (default whitespace). Returns an array without duplicates, in order.
function M.split(text, sep)
  local out, seen = {}, {}
  for s in tostring(text or ""):gmatch("[^" .. (sep or "%s") .. "]+") do
    if not seen[s] then
      seen[s] = true
      out[#out + 1] = s
    end
  end
  return out
end

-- Array -> set.
function M.set(list)
  local t = {}
  for _, s in ipairs(list) do t[s] = true end
  return t
end

return M
