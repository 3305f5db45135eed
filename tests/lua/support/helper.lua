-- Loaded by busted before every spec (--helper): makes tests/lua/support
-- requireable and checks that the binary under test is known.
local src = os.getenv("GHLUA_SRC") or "."
package.path = src .. "/tests/lua/?.lua;" .. package.path
assert(os.getenv("GHLUA"), "GHLUA must name the ghlua binary under test (ctest sets it)")
