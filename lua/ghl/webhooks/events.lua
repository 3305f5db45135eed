-- ghl.webhooks.events: data about HighLevel's webhook events that the
-- command line and the simulator share (data only, no code of either):
--   NAMES         the event types `ghlua webhook trigger` sends, in the
--                 order its help lists them (the simulator builds each:
--                 ghl.sim.webhooks.TRIGGERS; the payload shapes are
--                 HighLevel's, `docs/webhook events/*.md`)
--   name(kind)    the NAMES entry for kind, ignoring case, and the docs'
--                 file names AppInstall, AppUninstall, PlanChange; or nil
--   DEFAULT_PORT  the local receiver's port: `ghlua webhook serve` listens
--                 there unless told, `ghlua webhook trigger` sends there
local M = {}

M.DEFAULT_PORT = 4242

M.NAMES = {
  "ContactCreate", "ContactUpdate", "ContactDelete", "ContactTagUpdate", "ContactDndUpdate",
  "OpportunityCreate", "OpportunityUpdate", "OpportunityDelete", "OpportunityStageUpdate",
  "OpportunityStatusUpdate", "OpportunityMonetaryValueUpdate", "OpportunityAssignedToUpdate",
  "NoteCreate", "NoteUpdate", "NoteDelete",
  "InboundMessage", "OutboundMessage",
  "INSTALL", "UNINSTALL", "PLAN_CHANGE",
  "LocationCreate", "LocationUpdate",
}

local ALIAS = { appinstall = "INSTALL", appuninstall = "UNINSTALL", planchange = "PLAN_CHANGE" }

function M.name(kind)
  local k = tostring(kind):lower()
  if ALIAS[k] then return ALIAS[k] end
  for _, n in ipairs(M.NAMES) do
    if n:lower() == k then return n end
  end
end

return M
