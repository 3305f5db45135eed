-- A table that grows to ~400 MiB (bounded so that a missing --max-memory
-- shows as "survived", not as a machine out of memory).
recipe { name = "limit_table_growth", writes = false }
return function()
  local t = {}
  for i = 1, 4 * 1024 * 1024 do t[i] = { i, i + 1, i + 2 } end
  return "survived " .. #t
end
