-- ghl.config: the two places ghlua's configuration names, defined once.
--
--   api_base()    the HighLevel API every request goes to: $GHLUA_API_BASE
--                 (a simulator, a proxy) or HighLevel's own, without a
--                 trailing slash.
--   store_path()  where the token store lives: $GHLUA_STORE, else the
--                 default under the ghlua home (ghl.store.default_path:
--                 $GHLUA_HOME, $XDG_CONFIG_HOME/ghlua or ~/.config/ghlua).
--                 Returns nil, err when no home can be found.
--   home()        the ghlua home, the directory of the default store:
--                 $GHLUA_HOME, $XDG_CONFIG_HOME/ghlua or ~/.config/ghlua
--                 (per-user files such as the simulator's development key
--                 live there, wherever $GHLUA_STORE points).
--   store_dir()   the directory that holds the store in use.
--
-- Everything that needs one of these asks here; nothing reads the
-- environment variables itself.
local M = {}

M.API_BASE = "https://services.leadconnectorhq.com"

function M.api_base()
  local b = os.getenv("GHLUA_API_BASE")
  if b and b ~= "" then return (b:gsub("/+$", "")) end
  return M.API_BASE
end

-- Whether GHLUA_API_BASE was set (the receiver's simulator-key rule asks).
function M.api_base_set()
  local b = os.getenv("GHLUA_API_BASE")
  return b ~= nil and b ~= ""
end

function M.store_path()
  local p = os.getenv("GHLUA_STORE")
  if p and p ~= "" then return p end
  return require("ghl.store").default_path()
end

local function dir_of(p)
  local dir = p:match("^(.*)/[^/]*$") or "."
  return dir == "" and "/" or dir
end

function M.home()
  local p, err = require("ghl.store").default_path()
  if not p then return nil, err end
  return dir_of(p)
end

function M.store_dir()
  local p, err = M.store_path()
  if not p then return nil, err end
  return dir_of(p)
end

return M
