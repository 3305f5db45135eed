-- One shared 1 MiB string repeated in a list, then json.encode: the list
-- costs little, its text ~200 MiB (three times the 64M the spec allows).
-- The list ends with a function, so the text is never returned: only the
-- encoder's own buffer grows, and it must count against the cap.
recipe { name = "limit_json_encode", writes = false }
return function()
  local s = string.rep("x", 1024 * 1024)
  local t = {}
  for i = 1, 200 do t[i] = s end
  t[#t + 1] = print
  local text, err = ghl.json.encode(t)
  return "survived " .. tostring(text) .. " " .. tostring(err)
end
