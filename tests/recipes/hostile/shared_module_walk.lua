-- Walk everything reachable from the globals with pairs (and the
-- metatables getmetatable gives) looking for the token store's, the HTTP
-- layer's or the auth module's functions, and for token fields.
recipe { name = "shared_module_walk", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  local WANTED = { get_token = true, find_tokens = true, put_token = true, kv_put = true, kv_get = true,
    commit_refresh = true, static_token = true, access_token = true, refresh_token = true,
    readpass = true, getcwd = true, loadlib = true, getregistry = true, execute = true, popen = true,
    getenv = true, token = true, store = true, auth = true, http = true, sys = true, client_secret = true }
  local found, seen = {}, {}
  local function walk(v, path, depth)
    if depth > 6 or seen[v] then return end
    if type(v) ~= "table" and type(v) ~= "userdata" and type(v) ~= "function" then return end
    seen[v] = true
    local ok, mt = pcall(getmetatable, v)
    if ok and type(mt) == "table" then walk(mt, path .. "<mt>", depth + 1) end
    if type(v) ~= "table" then return end
    pcall(function()
      for k, x in pairs(v) do
        if type(k) == "string" and WANTED[k] and x ~= nil then found[#found + 1] = path .. "." .. k end
        walk(x, path .. "." .. tostring(k), depth + 1)
      end
    end)
  end
  walk(_G, "_G", 0)
  walk(ghl, "ghl", 0)
  walk(client, "client", 0)
  table.sort(found)
  return { found = found }
end
