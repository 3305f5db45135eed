-- ghl.sim.scopes: the OAuth scope catalogue the simulator knows (FACTS §11,
-- shared/highlevel/scopes.tsv), with the token types each scope is valid
-- for. An app targeting sub-accounts (user type Location) may only request
-- scopes a Location token can hold; an agency app (Company) may request any
-- of them, since it mints Location tokens through /oauth/locationToken.
-- Left out as not requestable: locations.internal-access-only (an internal
-- marker) and locations/write (a documented typo for locations.write).
-- Scopes of unknown type ("?") and the ones FACTS §13.12 calls likely both
-- (documents_contracts*, twilioaccount.read) are valid for either type.
-- Nothing here raises.
local M = {}

local LOCATION = {
  "adPublishing.readonly", "adPublishing.write", "affiliate-manager.readonly",
  "agent-studio.readonly", "agent-studio.write", "associations.readonly", "associations.write",
  "associations/relation.readonly", "associations/relation.write", "blogs/author.readonly",
  "blogs/category.readonly", "blogs/check-slug.readonly", "blogs/list.readonly",
  "blogs/post-update.write", "blogs/post.write", "blogs/posts.readonly",
  "brand-boards/design-kit.readonly", "brand-boards/design-kit.write", "businesses.readonly",
  "businesses.write", "calendars.readonly", "calendars.write", "calendars/events.readonly",
  "calendars/events.write", "calendars/groups.readonly", "calendars/groups.write",
  "calendars/resources.readonly", "calendars/resources.write", "campaigns.readonly",
  "charges.readonly", "charges.write", "chat-widget.readonly", "chat-widget.write",
  "contacts.readonly", "contacts.write", "conversation-ai.readonly", "conversation-ai.write",
  "conversations.readonly", "conversations.write", "conversations/livechat.write",
  "conversations/message.readonly", "conversations/message.write", "courses.write",
  "emails/builder.readonly", "emails/builder.write", "emails/campaigns.readonly",
  "emails/campaigns.write", "emails/stats.readonly", "emails/templates.readonly",
  "emails/templates.write", "forms.readonly", "forms.write", "funnels/funnel.readonly",
  "funnels/page.readonly", "funnels/pagecount.readonly", "funnels/redirect.readonly",
  "funnels/redirect.write", "lc-email.readonly", "links.readonly", "links.write",
  "locations/customFields.readonly", "locations/customFields.write",
  "locations/customValues.readonly", "locations/customValues.write", "locations/tags.readonly",
  "locations/tags.write", "locations/tasks.readonly", "locations/templates.readonly",
  "marketplace-external-auth-migration.write", "medias.readonly", "medias.write",
  "objects/record.readonly", "objects/record.write", "objects/schema.readonly",
  "opportunities.readonly", "opportunities.write", "payments/coupons.readonly",
  "payments/coupons.write", "payments/custom-provider.readonly",
  "payments/custom-provider.write", "payments/integration.readonly",
  "payments/integration.write", "payments/orders.collectPayment", "payments/orders.readonly",
  "payments/orders.write", "payments/subscriptions.readonly", "payments/transactions.readonly",
  "phonenumbers.write", "products/collection.readonly", "products/collection.write",
  "socialplanner/account.readonly", "socialplanner/account.write",
  "socialplanner/category.readonly", "socialplanner/category.write",
  "socialplanner/csv.readonly", "socialplanner/csv.write", "socialplanner/oauth.readonly",
  "socialplanner/oauth.write", "socialplanner/post.readonly", "socialplanner/post.write",
  "socialplanner/statistics.readonly", "socialplanner/tag.readonly", "surveys.readonly",
  "voice-ai-agent-goals.readonly", "voice-ai-agent-goals.write", "voice-ai-agents.readonly",
  "voice-ai-agents.write", "voice-ai-dashboard.readonly", "workflows.readonly",
}

local BOTH = {
  "emails/schedule.readonly", "invoices.readonly", "invoices.write",
  "invoices/estimate.readonly", "invoices/estimate.write", "invoices/schedule.readonly",
  "invoices/schedule.write", "invoices/template.readonly", "invoices/template.write",
  "locations.readonly", "marketplace-installer-details.readonly", "numberpools.read",
  "oauth.readonly", "oauth.write", "objects/schema.write", "phonenumbers.read",
  "products.readonly", "products.write", "products/prices.readonly", "products/prices.write",
  "saas/company.write", "saas/location.read", "saas/location.write", "users.readonly",
  "users.write",
  -- type unknown, or likely both (FACTS §13.12)
  "conversations/reports.readonly", "courses.readonly", "knowledge-bases.readonly",
  "knowledge-bases.write", "locations/tasks.write", "recurring-tasks.readonly",
  "recurring-tasks.write", "saas/location.complimentaryCredit.read",
  "saas/location.complimentaryCredit.write", "socialplanner/tag.write",
  "store/setting.readonly", "store/setting.write", "store/shipping.readonly",
  "store/shipping.write", "wordpress.site.readonly",
  "documents_contracts/list.readonly", "documents_contracts/sendLink.write",
  "documents_contracts_template/list.readonly", "documents_contracts_template/sendLink.write",
  "twilioaccount.read",
}

local COMPANY = {
  "companies.readonly", "custom-menu-link.readonly", "custom-menu-link.write",
  "locations.write", "saas/company.read", "snapshots.readonly", "snapshots.write",
}

-- scope -> {Location = bool, Company = bool}
M.TYPES = {}
-- every known scope, sorted
M.ALL = {}

for _, s in ipairs(LOCATION) do M.TYPES[s] = { Location = true, Company = false } end
for _, s in ipairs(BOTH) do M.TYPES[s] = { Location = true, Company = true } end
for _, s in ipairs(COMPANY) do M.TYPES[s] = { Location = false, Company = true } end
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
