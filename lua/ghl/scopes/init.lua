-- ghl.scopes: HighLevel's OAuth scope catalogue (the generated rows in
-- ghl.scopes.data, FACTS §11; regenerate with
--   build/ghlua tools/gen_scopes.lua ../shared/highlevel/scopes.tsv > lua/ghl/scopes/data.lua)
-- and the groups people know from the portal's checkboxes ("Custom Fields",
-- "Agency", "all", ...; any area name such as "socialplanner" works as a
-- group too). parse() turns "contacts, calendars.readonly ..." into scopes
-- and returns nil, ghl.error(kind "scope") naming every unknown entry with
-- suggestions; the lookups never fail. Rows are copies: changing one does
-- not change the catalogue. Passing a non-string is a bug and raises a string.
local E = require "ghl.error"

local M = {}

local ROWS, BY_NAME = {}, {}
for _, r in ipairs(require "ghl.scopes.data") do
  local row = {
    scope = r.scope, area = r.area, tokens = r.tokens,
    agency_only = r.agency_only or false, agency_pro = r.agency_pro or false,
    requestable = r.requestable ~= false, seen_location = r.seen_location or false,
    note = r.note,
  }
  ROWS[#ROWS + 1] = row
  BY_NAME[row.scope] = row
end

local function copy(row)
  local t = {}
  for k, v in pairs(row) do t[k] = v end
  return t
end

-- Group keys: lower case, runs of spaces, '-' and '_' as one space.
local function key(name)
  return (name:lower():gsub("[%s_%-]+", " "):match("^%s*(.-)%s*$"))
end

-- The groups, in the order `ghlua scopes` lists them: a name and a test on
-- a row (a pattern on the scope name, or a function).
local GROUPS = {
  { "Businesses", "^businesses%." }, { "Calendars", "^calendars[%./]" },
  { "Conversations", "^conversations[%./]" }, { "Campaigns", "^campaigns%." },
  { "Contacts", "^contacts%." }, { "Courses", "^courses%." }, { "Funnels", "^funnels/" },
  { "Invoices", "^invoices[%./]" }, { "Forms", "^forms%." }, { "Links", "^links%." },
  { "Locations", "^locations%." }, { "Custom Values", "^locations/customValues%." },
  { "Custom Fields", "^locations/customFields%." }, { "Orders", "^payments/orders%." },
  { "Tags", "^locations/tags%." }, { "Templates", "^locations/templates%." },
  { "Tasks", "^locations/tasks%." }, { "Transactions", "^payments/transactions%." },
  { "Medias", "^medias%." }, { "Opportunities", "^opportunities%." },
  { "Payments Integration", "^payments/integration%." }, { "Products", "^products[%./]" },
  { "Subscriptions", "^payments/subscriptions%." }, { "Surveys", "^surveys%." },
  { "Users", "^users%." }, { "Workflows", "^workflows%." },
  { "Agency", function(r) return r.agency_only end },
  { "Agency Pro", function(r) return r.agency_pro end },
  { "all", function() return true end },
}

-- Expanded groups and areas by key: {name=, kind=, scopes=}.
local GROUP_LIST, BY_KEY = {}, {}
for _, g in ipairs(GROUPS) do
  local name, test, list = g[1], g[2], {}
  for _, r in ipairs(ROWS) do
    local hit
    if type(test) == "string" then hit = r.scope:find(test) else hit = test(r) end
    if hit and r.requestable then list[#list + 1] = r.scope end
  end
  GROUP_LIST[#GROUP_LIST + 1] = { name = name, scopes = list }
  BY_KEY[key(name)] = { name = name, kind = "group", scopes = list }
end
for _, r in ipairs(ROWS) do
  local k = key(r.area)
  if not BY_KEY[k] then BY_KEY[k] = { name = r.area, kind = "area", scopes = {} } end
  if BY_KEY[k].kind == "area" and r.requestable then table.insert(BY_KEY[k].scopes, r.scope) end
end

-- info(name) -> the row of an exact scope name, or nil.
function M.info(name)
  local r = BY_NAME[name]
  return r and copy(r)
end

-- rows() -> every row, requestable or not, in catalogue order.
function M.rows()
  local out = {}
  for i, r in ipairs(ROWS) do out[i] = copy(r) end
  return out
end

-- groups() -> ordered list of {name=, scopes={...}}.
function M.groups()
  local out = {}
  for i, g in ipairs(GROUP_LIST) do out[i] = { name = g.name, scopes = table.move(g.scopes, 1, #g.scopes, 1, {}) } end
  return out
end

-- group(name) -> {name=, kind="group"|"area", scopes=} for a group or area
-- name (case, spaces, '-' and '_' do not matter), or nil.
function M.group(name)
  local g = BY_KEY[key(name)]
  return g and { name = g.name, kind = g.kind, scopes = table.move(g.scopes, 1, #g.scopes, 1, {}) }
end

-- names() -> the group and area names as the command line writes them
-- ("custom-fields", "socialplanner"), sorted.
function M.names()
  local out = {}
  for k in pairs(BY_KEY) do out[#out + 1] = (k:gsub(" ", "-")) end
  table.sort(out)
  return out
end

-- search(word) -> rows whose scope, area or note contains word (any case).
function M.search(word)
  local w, out = word:lower(), {}
  for _, r in ipairs(ROWS) do
    if (r.scope .. "\0" .. r.area .. "\0" .. (r.note or "")):lower():find(w, 1, true) then out[#out + 1] = copy(r) end
  end
  return out
end

-- token_types(list) -> {Company=, Location=, both=, unknown=}: the scopes of
-- list by the token type they need (names not in the catalogue are skipped).
function M.token_types(list)
  local out = { Company = {}, Location = {}, both = {}, unknown = {} }
  for _, s in ipairs(list) do
    local r = BY_NAME[s]
    if r then table.insert(out[r.tokens], s) end
  end
  return out
end

-- misfits(list, target) -> the scopes of list that an app whose target
-- user is `target` ("Location": sub-account, "Company": agency) cannot
-- request, in list order: on a Location app, the agency-only (Company)
-- scopes, except those also seen on sub-account apps. HighLevel's consent
-- page refuses a link that asks for one. An agency app may request any
-- scope (it mints Location tokens through oauth.write). Names not in the
-- catalogue are not judged here (parse reports them).
function M.misfits(list, target)
  local out = {}
  if target ~= "Location" then return out end
  for _, s in ipairs(list) do
    local r = BY_NAME[s]
    if r and r.agency_only and not r.seen_location then out[#out + 1] = s end
  end
  return out
end

-- target_problem(list, target, retarget, ask) -> nil, or {scopes=, keep=,
-- message=, fix=}: the misfits of list for a `target` app in one
-- sentence, and the fix: the fitting scopes to ask for instead (`ask`, a
-- format for the space-separated list, default '--scopes "%s"'), and
-- `retarget` (how to tell ghlua the app targets agencies, e.g.
-- "'ghlua app update NAME --user-type Company'") when given.
function M.target_problem(list, target, retarget, ask)
  local bad = M.misfits(list, target)
  if #bad == 0 then return nil end
  local badset, keep = {}, {}
  for _, s in ipairs(bad) do badset[s] = true end
  for _, s in ipairs(list) do if not badset[s] then keep[#keep + 1] = s end end
  return {
    scopes = bad, keep = keep,
    message = string.format("%s %s agency-only (Company) and cannot be granted to an app whose target user is"
      .. " Location (sub-account): HighLevel's consent page refuses the whole request", table.concat(bad, " "),
      #bad == 1 and "is" or "are"),
    fix = (#keep > 0 and string.format("leave %s out: " .. (ask or '--scopes "%s"'), #bad == 1 and "it" or "them",
        table.concat(keep, " "))
      or "ask for sub-account scopes only ('ghlua scopes' shows each scope's token type)")
      .. (retarget and ("; if the app's target user in the portal is Agency, say so: " .. retarget) or ""),
  }
end

---- Suggestions ----

-- distance(a, b [, limit]) -> the Levenshtein edit distance between two
-- strings. With limit, a distance above it comes back as limit + 1, found
-- early: when the lengths differ by more, or once a whole row of the table
-- is past it (rows never get smaller), so a long name costs little.
local function distance(a, b, limit)
  if limit and math.abs(#a - #b) > limit then return limit + 1 end
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local best = i
    cur[0] = i
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      cur[j] = v
      if v < best then best = v end
    end
    if limit and best > limit then return limit + 1 end
    prev, cur = cur, prev
  end
  return prev[#b]
end
M.distance = distance

-- Candidates: requestable scopes (compared in lower case) and group/area
-- names (compared by key, shown as "custom-fields").
local CANDIDATES = {}
for _, r in ipairs(ROWS) do
  if r.requestable then CANDIDATES[#CANDIDATES + 1] = { cmp = r.scope:lower(), show = r.scope } end
end
for k in pairs(BY_KEY) do CANDIDATES[#CANDIDATES + 1] = { cmp = k, show = k:gsub(" ", "-") } end
table.sort(CANDIDATES, function(a, b) return a.show < b.show end)

-- suggest(name) -> up to 4 real scopes or group names close to name: a
-- case-only mismatch alone, else the names it is a prefix of alone, else
-- names within a small edit distance, sharing most of its start
-- ("opportunity" -> opportunities) or its resource part ("contacts.delete"
-- -> contacts.*), best first.
function M.suggest(name)
  local lower, gkey = name:lower(), key(name)
  local stem = lower:match("^(.*)%.[^./]*$")
  local scored = {}
  for _, c in ipairs(CANDIDATES) do
    local input = c.cmp:find("[./]") and lower or gkey
    if c.cmp == input then return { c.show } end
    local score
    if #input >= 3 and c.cmp:sub(1, #input) == input then
      score = 0.5
    else
      local limit = math.max(2, #input // 6)
      local d = distance(input, c.cmp, limit)
      if d <= limit then score = d end
      local same = 0
      while same < #input and input:byte(same + 1) == c.cmp:byte(same + 1) do same = same + 1 end
      if same >= 5 and same >= #input - 3 then score = math.min(score or 2, 2) end
      if stem and c.cmp:match("^(.*)%.[^./]*$") == stem then score = math.min(score or 3, 3) end
    end
    if score then scored[#scored + 1] = { score = score, show = c.show } end
  end
  table.sort(scored, function(a, b)
    if a.score ~= b.score then return a.score < b.score end
    return a.show < b.show
  end)
  local out, prefix_only = {}, scored[1] and scored[1].score < 1
  for i = 1, math.min(4, #scored) do
    if not prefix_only or scored[i].score < 1 then out[#out + 1] = scored[i].show end
  end
  return out
end

-- describe(name) -> "'name' (why; did you mean a or b?)": one unknown entry
-- as parse's message and the link linter show it.
function M.describe(name)
  local why = {}
  local r = BY_NAME[name]
  if r and not r.requestable then why[1] = "not requestable: " .. (r.note or "internal") end
  local sugg = M.suggest(name)
  if #sugg > 0 then
    local case_only = #sugg == 1 and sugg[1]:lower() == name:lower() and sugg[1]:find("[./]")
    why[#why + 1] = "did you mean " .. table.concat(sugg, " or ") .. "?"
      .. (case_only and " scope names are case-sensitive" or "")
  end
  return string.format("'%s'", name) .. (#why > 0 and (" (" .. table.concat(why, "; ") .. ")") or "")
end

---- Parsing ----

-- Resolve one entry to a list of scopes, or nil.
local function resolve(name)
  local r = BY_NAME[name]
  if r then return r.requestable and { name } or nil end
  if not name:find("[./]") then
    local g = BY_KEY[key(name)]
    return g and g.scopes
  end
end

-- Split a chunk (no commas) into entries: single words, or up to three
-- words that name a group ("Custom Fields"); two unknown words close to a
-- group name stay together, so "Custom Feilds" gets one suggestion.
local function entries(chunk, out)
  local words = {}
  for w in chunk:gmatch("%S+") do words[#words + 1] = w end
  local i = 1
  while i <= #words do
    local n = 1
    for m = math.min(3, #words - i + 1), 2, -1 do
      if resolve(table.concat(words, " ", i, i + m - 1)) then n = m; break end
    end
    local w, nxt = words[i], words[i + 1]
    if n == 1 and nxt and not resolve(w) and not resolve(nxt) and not (w .. nxt):find("[./]")
       and #M.suggest(w .. " " .. nxt) > 0 then
      n = 2
    end
    out[#out + 1] = { name = table.concat(words, " ", i, i + n - 1) }
    i = i + n
  end
end

-- parse(input) -> array of scopes (first-seen order, no duplicates), or
-- nil, ghl.error{kind="scope", unknown={{name=, suggestions=}...}}.
-- input is a string (commas and/or whitespace separate entries) or an
-- array of such strings; entries are scope names or group/area names.
function M.parse(input)
  if type(input) == "string" then input = { input } end
  if type(input) ~= "table" then error("scopes.parse: expected a string or an array of strings, got " .. type(input), 2) end
  local list = {}
  for i, s in ipairs(input) do
    if type(s) ~= "string" then error(string.format("scopes.parse: entry %d is a %s, not a string", i, type(s)), 2) end
    for chunk in s:gmatch("[^,]+") do entries(chunk, list) end
  end
  local out, seen, bad = {}, {}, {}
  for _, e in ipairs(list) do
    local scopes = resolve(e.name)
    if scopes then
      for _, s in ipairs(scopes) do
        if not seen[s] then seen[s] = true; out[#out + 1] = s end
      end
    else
      bad[#bad + 1] = { name = e.name, suggestions = M.suggest(e.name), text = M.describe(e.name) }
    end
  end
  local hint = "'ghlua scopes' lists the groups and scopes"
  if #bad > 0 then
    local texts, what = {}, "scope"
    for i, b in ipairs(bad) do
      texts[i] = b.text
      b.text = nil
      if not b.name:find("[./]") then what = "scope or group" end
    end
    what = #bad == 1 and what or what:gsub("scope", "scopes"):gsub("group", "groups")
    return nil, E.new { kind = "scope", unknown = bad, hint = hint,
      message = "unknown " .. what .. ": " .. table.concat(texts, ", ") }
  end
  if #out == 0 then return nil, E.new { kind = "scope", unknown = {}, hint = hint, message = "no scopes given" } end
  return out
end

return M
