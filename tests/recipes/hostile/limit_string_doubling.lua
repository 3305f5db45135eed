-- string.rep and concatenation doubling up to 256 MiB (with the previous
-- copy alive: ~512 MiB at the end).
recipe { name = "limit_string_doubling", writes = false }
return function()
  local s = string.rep("x", 1024 * 1024)
  while #s < 256 * 1024 * 1024 do s = s .. s end
  local r = string.rep("y", 128 * 1024 * 1024)
  return "survived " .. (#s + #r)
end
