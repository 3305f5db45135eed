-- Busy loops inside pcall, in a loop: a timeout that pcall can catch would
-- be caught and the next loop started.
recipe { name = "limit_pcall_loop", writes = false }
return function()
  local t0 = os.clock()
  local caught = 0
  while os.clock() - t0 < 5 do
    local ok = pcall(function()
      local t1 = os.clock()
      while os.clock() - t1 < 0.25 do end
    end)
    if not ok then caught = caught + 1 end
    -- the error handler of xpcall, too
    xpcall(function() local t1 = os.clock() while os.clock() - t1 < 0.25 do end end,
           function(e) caught = caught + 1; return e end)
  end
  return "survived (caught " .. caught .. ")"
end
