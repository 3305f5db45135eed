-- A busy loop. Bounded (5 s of CPU) only so that a missing --timeout shows
-- as a failed test ("survived") rather than a hung one.
recipe { name = "limit_busy_loop", writes = false }
return function()
  local t0 = os.clock()
  while os.clock() - t0 < 5 do end
  return "survived"
end
