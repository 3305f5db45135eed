-- ghl.util: small helpers more than one tier needs.
--   util.shell_quote(s) -> s as one POSIX shell word: unchanged when it
--       holds only characters the shell takes literally, else in single
--       quotes (a ' inside written '\'').
local M = {}

function M.shell_quote(s)
  s = tostring(s)
  if s:match("^[%w@%%+=:,./_-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

return M
