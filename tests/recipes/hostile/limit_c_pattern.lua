-- A pattern match that backtracks for seconds inside string.find, a C
-- function: no instruction hook runs there, so only the watchdog alarm past
-- the deadline ends it. Bounded (about 20 s) so that a missing watchdog
-- shows as a failed test ("survived") rather than a hung one.
recipe { name = "limit_c_pattern", writes = false }
return function()
  local t0 = os.clock()
  while os.clock() - t0 < 20 do
    string.rep("a", 200000):find(string.rep("a-", 8) .. "b")
  end
  return "survived"
end
