-- Memory bombs inside pcall, in a loop: "not enough memory" caught, the
-- garbage collected, and again. Each round holds ~128 MiB at its peak
-- (twice the 64M the spec allows), then one string of 256 MiB at once.
recipe { name = "limit_pcall_memory", writes = false }
return function()
  local caught = 0
  for round = 1, 4 do
    local ok = pcall(function()
      local t = {}
      for i = 1, 32 do t[i] = string.rep(string.char(64 + round), 4 * 1024 * 1024 - i) end
      return #t
    end)
    if not ok then caught = caught + 1 end
  end
  local ok = pcall(string.rep, "z", 256 * 1024 * 1024)
  if not ok then caught = caught + 1 end
  return "survived (caught " .. caught .. ")"
end
