-- ghlua bench/decode/page.lua FILE [contact]: writes the 100-contact page
-- that bench/api.lua serves (with "contact": the 1.6 KB contact it serves
-- at /contacts/ID) to FILE; its "Test data" section is loaded from api.lua
-- itself, so the bytes are the same.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local src = assert(io.open(here .. "/../api.lua")):read("a")
local data = assert(src:match("(%-%- %-%-%-%- Test data.-)%-%- %-%-%-%- nginx"), "api.lua: no Test data section")
local out = assert(arg[1], "usage: ghlua bench/decode/page.lua FILE [contact]")
local want = arg[2] == "contact" and "/contact%.json$" or "/page%.json$"
local env = setmetatable({
  cjson = require "cjson",
  spit = function(path, s) if path:match(want) then assert(io.open(out, "wb")):write(s):close() end end,
}, { __index = _G })
assert(load(data .. "\nreturn write_data", "=api.lua test data", "t", env))()("")
