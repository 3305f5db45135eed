-- Lower cjson's encode and decode depth limits: the host would fail to
-- print a nested result and to decode nested answers.
recipe { name = "shared_cjson_max_depth", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  for _, m in ipairs { function() return ghl.json end, function() return require "cjson" end,
                       function() return require "cjson.safe" end } do
    pcall(function() m().encode_max_depth(1) end)
    pcall(function() m().decode_max_depth(1) end)
    pcall(function() m().encode_sparse_array(false, 0, 0) end)
    pcall(function() m().encode_keep_buffer(false) end)
  end
  local c = {}
  for i = 1, 20 do c[i] = i end
  return { a = { b = { c = c } } }
end
