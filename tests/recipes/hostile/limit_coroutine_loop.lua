-- Busy loops in coroutines, each new one resumed after the last died: an
-- error inside a coroutine comes back to resume as a value.
recipe { name = "limit_coroutine_loop", writes = false }
return function()
  local t0 = os.clock()
  local dead = 0
  while os.clock() - t0 < 5 do
    local co = coroutine.create(function()
      local t1 = os.clock()
      while os.clock() - t1 < 0.25 do coroutine.yield() end
    end)
    repeat
      local ok = coroutine.resume(co)
      if not ok then dead = dead + 1 end
    until coroutine.status(co) == "dead"
    local w = coroutine.wrap(function() local t1 = os.clock() while os.clock() - t1 < 0.25 do end end)
    pcall(w)
  end
  return "survived (" .. dead .. " died)"
end
