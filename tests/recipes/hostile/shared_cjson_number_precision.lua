-- cjson's configuration lives in the module instance: with one shared by
-- the host, the host would print the recipe's result (and encode request
-- bodies) with one significant digit.
recipe { name = "shared_cjson_number_precision", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  for _, f in ipairs { "encode_number_precision" } do
    pcall(function() ghl.json[f](1) end)
    pcall(function() require("cjson")[f](1) end)
    pcall(function() require("cjson.safe")[f](1) end)
  end
  return { pi = 3.25, big = 123456.5 }
end
