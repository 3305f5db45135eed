-- Binary chunks and the missing libraries: string.dump is gone, and
-- load() refuses hand-made bytecode (an ESC "Lua" header), the mode "b"
-- and a reader giving bytecode. No io, os.execute, package, debug,
-- loadfile, dofile. Returns what it could reach; the spec wants all false.
recipe { name = "sandbox_globals", writes = false }
return function()
  local got = {}
  got.dump = string.dump ~= nil or (pcall(function() return ("").dump end) and ("").dump ~= nil)
  local hand = "\27Lua\84\0\25\147\13\10\26\10\4\8\8\120\86\0\0\0\0\0\0\0\0\0\0\0\40\119\64"
  got.load_bytes = (load(hand) ~= nil)
  got.load_mode_b = (load(hand, "x", "b") ~= nil)
  got.load_mode_bt = (load(hand, "x", "bt") ~= nil)
  local i = 0
  got.load_reader = (load(function() i = i + 1; return i == 1 and hand or nil end) ~= nil)
  got.io = io ~= nil
  got.execute = os.execute ~= nil or os.getenv ~= nil or os.remove ~= nil or os.exit ~= nil
  got.package = package ~= nil
  got.debug = debug ~= nil
  got.loadfile = loadfile ~= nil or dofile ~= nil
  got.os_time = not (os.time and os.clock and os.date and os.difftime)
  return got
end
