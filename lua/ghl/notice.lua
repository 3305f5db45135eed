-- ghl.notice: one-line notices on standard error for a person watching a
-- terminal, about a wait they would otherwise sit through in silence: a
-- rate-limit wait of more than a second, a request sent again after a
-- failure. Every notice of the library goes through say(); nothing else
-- prints them.
--   notice.say(kind, key, text, seconds)  print "ghlua: TEXT" unless
--       notices are off, or the same key was announced and its wait
--       (seconds) has not ended, or a notice of this kind for another key
--       was printed less than GAP seconds ago. So one request retried
--       three times says so three times, 300 coroutines of ghl.parallel
--       waiting behind one bucket print one line per wait, and many
--       buckets waiting at once print at most one line a second.
--   notice.status(text)   the status line (a progress count) kept at the
--       bottom: drawn now, and again after each notice; nil clears it.
--   notice.enabled()      are notices shown: standard error is a terminal,
--       and neither GHLUA_QUIET (set, not "0") nor `ghlua --quiet` (which
--       sets it) nor notice.quiet = true asks for silence.
-- Never raises: a notice that cannot be written is dropped.
local sys = require "ghl.sys"

local M = {}

M.GAP = 1            -- seconds between two notices of one kind
M.quiet = false

local until_of = {}  -- key -> time until which it stays announced
local last_of = {}   -- kind -> {at =, key =}: its last notice
local shown          -- the status line, when one is drawn

function M.enabled()
  if M.quiet then return false end
  local q = os.getenv("GHLUA_QUIET")
  if q and q ~= "" and q ~= "0" then return false end
  return sys.isatty(2)
end

local function write(...)
  pcall(io.stderr.write, io.stderr, ...)
end

function M.say(kind, key, text, seconds)
  if not M.enabled() then return false end
  local now = sys.now()
  if key ~= nil and (until_of[key] or 0) > now then return false end
  local last = last_of[kind]
  if last and (key == nil or last.key ~= key) and now - last.at < M.GAP then return false end
  last_of[kind] = { at = now, key = key }
  if key ~= nil then until_of[key] = now + (seconds or 0) end
  -- expired keys go, so a long run does not keep every bucket it announced
  for k, t in pairs(until_of) do
    if t <= now then until_of[k] = nil end
  end
  write("\r\27[K", "ghlua: ", require("ghl.error").sanitize(text), "\n", shown or "")
  return true
end

function M.status(text)
  if text == nil then
    if shown then write("\r\27[K") end
    shown = nil
    return
  end
  if not sys.isatty(2) then return end
  shown = "\r" .. tostring(text)
  write(shown, "\27[K")
end

-- "9.8 s", "0.4 s", "12 s": a duration in a notice.
function M.seconds(s)
  if s >= 9.95 then return ("%.0f s"):format(s) end
  return ("%.1f s"):format(s)
end

return M
