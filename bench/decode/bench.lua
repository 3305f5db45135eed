-- decode_host bench/decode/bench.lua FILE [ROUNDS] [PER_ROUND] [DECODER...]:
-- decodes FILE PER_ROUND times per round with each decoder (cjson, fast,
-- simd; the order rotates every round, so load on the machine hits all of
-- them alike) and prints, per decoder, the median wall and CPU time per
-- decode, MB/s (of CPU time) and Lua allocations per decode. The garbage
-- of each decode is collected by Lua's ordinary incremental GC during the
-- next ones, as in a program that decodes page after page.
-- ROUNDS 0: decode PER_ROUND times with the first decoder only and print
-- nothing (for valgrind --tool=callgrind).
local file, rounds, per = arg[1], tonumber(arg[2] or 15), tonumber(arg[3] or 20)
local text = assert(io.open(assert(file, "usage: bench.lua FILE [ROUNDS] [PER_ROUND] [DECODER...]"), "rb")):read("a")
local names = { table.unpack(arg, 4) }
if #names == 0 then names = dec.simd and { "cjson", "fast", "simd" } or { "cjson", "fast" } end
if rounds == 0 then
  local f = dec[names[1]]
  for _ = 1, per do assert(f(text)) end
  return
end
local wall, cpu, allocs = {}, {}, {}
for _, n in ipairs(names) do wall[n], cpu[n], allocs[n] = {}, {}, {} ; for _ = 1, 3 do assert(dec[n](text)) end end
for r = 1, rounds do
  for i = 0, #names - 1 do
    local n = names[(r + i) % #names + 1]
    local f = dec[n]
    collectgarbage("collect")
    local a0 = dec.allocs()
    local t0, c0 = dec.clock(), dec.cpu()
    for _ = 1, per do f(text) end
    local t1, c1 = dec.clock(), dec.cpu()
    wall[n][r], cpu[n][r], allocs[n][r] = (t1 - t0) / per, (c1 - c0) / per, (dec.allocs() - a0) / per
  end
end
local function median(t) table.sort(t) return t[(#t + 1) // 2] end
local base = median(cpu[names[1]])
print(("%d bytes, %d rounds of %d decodes; medians per decode"):format(#text, rounds, per))
print("| decoder | wall, ms | CPU, ms | MB/s (CPU) | Lua allocations | CPU vs " .. names[1] .. " |")
print("|---|---|---|---|---|---|")
for _, n in ipairs(names) do
  local w, c = median(wall[n]), median(cpu[n])
  print(("| %s | %.2f | %.2f | %.0f | %d | %.2f× faster |"):format(n, w * 1e3, c * 1e3, #text / c / 1e6,
    math.floor(median(allocs[n]) + 0.5), base / c))
end
