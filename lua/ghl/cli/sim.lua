-- ghl.cli.sim: the `ghlua sim` command. Parses the flags, builds the
-- simulator app (ghl.sim), serves it with ghl.server until SIGTERM or Ctrl-C,
-- and announces itself: one "listening" line on stdout and, with
-- --ready-file, a JSON file {url, pid, locationId, token} written atomically
-- once the port is open. Tokens are never printed in full. Bad flags raise
-- a ghl.error of kind "usage" (exit 2); an unreadable tokens file or a port
-- that cannot be bound raise the error as is (exit 1); an interrupt is a
-- clean stop (exit 0).
local E = require "ghl.error"
local args = require "ghl.cli.args"

local M = {}

M.summary = "run a local HighLevel API simulator (contacts, custom fields, custom values)"

M.usage = "ghlua sim [--port N] [--host H] [--tls --cert F --key F] [--contacts N] [--seed N]"
  .. " [--location ID] [--token T]... [--tokens FILE] [--ready-file F] [--rate-max N]"
  .. " [--rate-interval-ms N] [--rate-daily N] [--faults] [--quiet]"

M.help = [[
Serve a simulated HighLevel V2 API (services.leadconnectorhq.com) on loopback.

  --port N              port to listen on (default 0: any free port)
  --host H              address to bind (default 127.0.0.1)
  --tls --cert F --key F  serve HTTPS with this PEM certificate and key
  --contacts N          seed N deterministic contacts in the default location
  --seed N              random seed for ids and seed data (default 1)
  --location ID         default location id (default ve9EPM428h8vShlRW1KT)
  --token T             accept bearer token T for the default location (repeatable)
  --tokens FILE         more tokens, one per line: TOKEN [LOCATION_ID]; '#' comments
  --ready-file F        once listening, write {"url","pid","locationId","token"} to F
  --rate-max N          requests per burst window (default 100)
  --rate-interval-ms N  burst window length (default 10000)
  --rate-daily N        requests per day (default 200000)
  --faults              mount the /__fault/ test routes
  --quiet               no per-request log on stderr

Without --token or --tokens a random token is generated; it is written to the
ready file and shown on stdout only as its last four characters.
Routes: /contacts (create, get, update, delete, upsert, search, list, tags,
duplicate), /locations/{id}/customFields, /locations/{id}/customValues,
GET /__sim/stats. Every API route needs "Version" and "Authorization: Bearer".
]]

local SPEC = {
  port = "number", host = "string", tls = "flag", cert = "string", key = "string",
  contacts = "number", seed = "number", location = "string", token = "list",
  tokens = "string", ["ready-file"] = "string", ["rate-max"] = "number",
  ["rate-interval-ms"] = "number", ["rate-daily"] = "number", faults = "flag",
  quiet = "flag", help = "flag",
}

local function usage_error(msg)
  args.usage(msg, M.usage)
end

-- An integer flag within [min, max], or default when absent.
local function int_flag(opts, name, min, max, default)
  local v = opts[name]
  if v == nil then return default end
  local n = math.tointeger(v)
  if not n or n < min or n > max then
    usage_error(string.format("--%s must be an integer from %d to %d", name, min, max))
  end
  return n
end

-- Only the tail of a secret is ever shown.
function M.redact(token)
  if #token < 12 then return "…" end
  return "…" .. token:sub(-4)
end

-- Read a tokens file: lines "TOKEN [LOCATION_ID]", blank lines and '#'
-- comments ignored. Returns an array of {token=, location=}.
function M.read_tokens(path)
  local f, err = io.open(path, "r")
  if not f then
    error(E.new { kind = "io", where = "sim", message = "cannot read --tokens file: " .. tostring(err) }, 0)
  end
  local list, n = {}, 0
  for line in f:lines() do
    n = n + 1
    line = line:gsub("^%s*#.*$", ""):gsub("%s+#.*$", "")
    local tok, loc, rest = line:match("^%s*(%S*)%s*(%S*)%s*(.-)%s*$")
    if rest ~= "" then
      f:close()
      usage_error(string.format("%s:%d: expected TOKEN [LOCATION_ID]", path, n))
    end
    if tok ~= "" then list[#list + 1] = { token = tok, location = loc ~= "" and loc or nil } end
  end
  f:close()
  return list
end

-- Write data to path atomically (path.tmp, then rename).
local function write_atomic(path, data)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if f then
    local ok
    ok, err = f:write(data)
    f:close()
    if ok then ok, err = os.rename(tmp, path) end
    if ok then return end
  end
  os.remove(tmp)
  error(E.new { kind = "io", where = "sim", message = "cannot write ready file: " .. tostring(err) }, 0)
end

local function hex(bytes)
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- Turn parsed flags into the ghl.sim config (raises usage errors).
function M.config(opts)
  local sys = require "ghl.sys"
  local location = opts.location or require("ghl.sim.state").DEFAULT_LOCATION
  if not location:match("^[%w_%-]+$") then usage_error("--location must be letters, digits, '_' or '-'") end
  local tokens = {}
  for _, t in ipairs(opts.token or {}) do
    if not t:match("^%S+$") then usage_error("--token must not be empty or contain spaces") end
    tokens[#tokens + 1] = { token = t }
  end
  if opts.tokens then
    for _, t in ipairs(M.read_tokens(opts.tokens)) do tokens[#tokens + 1] = t end
  end
  local generated
  if #tokens == 0 then
    generated = "sim_" .. hex(assert(sys.random_bytes(24)))
    tokens[1] = { token = generated }
  end
  local primary
  for _, t in ipairs(tokens) do
    if not t.location or t.location == location then primary = primary or t.token end
  end
  if opts.tls and not (opts.cert and opts.key) then usage_error("--tls needs --cert F and --key F") end
  if (opts.cert or opts.key) and not opts.tls then usage_error("--cert and --key need --tls") end
  return {
    host = opts.host or "127.0.0.1",
    port = int_flag(opts, "port", 0, 65535, 0),
    tls = opts.tls and { cert = opts.cert, key = opts.key } or nil,
    location = location,
    seed = int_flag(opts, "seed", math.mininteger, math.maxinteger, 1),
    contacts = int_flag(opts, "contacts", 0, 10000000, 0),
    tokens = tokens,
    primary_token = primary,
    generated_token = generated,
    rate = {
      max = int_flag(opts, "rate-max", 1, math.maxinteger, 100),
      interval_ms = int_flag(opts, "rate-interval-ms", 1, math.maxinteger, 10000),
      daily = int_flag(opts, "rate-daily", 1, math.maxinteger, 200000),
    },
    faults = opts.faults or false,
    quiet = opts.quiet or false,
    ready_file = opts["ready-file"],
  }
end

function M.run(argv)
  local opts, rest = args.parse(argv or {}, SPEC, M.usage)
  if opts.help then
    io.stdout:write("usage: ", M.usage, "\n\n", M.help)
    return 0
  end
  if rest and #rest > 0 then usage_error("unexpected argument '" .. tostring(rest[1]) .. "'") end
  local cfg = M.config(opts)

  local sim, server, sys = require "ghl.sim", require "ghl.server", require "ghl.sys"
  local reply = require "ghl.sim.reply"
  if not cfg.quiet then
    cfg.log = function(line) io.stderr:write(line, "\n") end
  end
  local app = sim.new(cfg)
  local srv, err = server.listen { host = cfg.host, port = cfg.port, tls = cfg.tls, handler = app:handler() }
  if not srv then error(err, 0) end
  app:set_base_url(srv.url or string.format("%s://%s:%d", cfg.tls and "https" or "http", cfg.host, srv.port))
  local url = app.base_url

  io.stdout:write(string.format("ghlua sim: listening on %s (location %s)\n", url, cfg.location))
  if cfg.generated_token then
    io.stdout:write(string.format("ghlua sim: generated token %s (%s)\n", M.redact(cfg.generated_token),
      cfg.ready_file and "full value in the ready file" or "pass --token T or --ready-file F to use it"))
  else
    io.stdout:write(string.format("ghlua sim: accepting %d token%s\n", #cfg.tokens, #cfg.tokens == 1 and "" or "s"))
  end
  io.stdout:flush()

  if cfg.ready_file then
    local ok, werr = pcall(write_atomic, cfg.ready_file, reply.encode {
      url = url, pid = sys.getpid(), locationId = cfg.location, token = cfg.primary_token or reply.null,
    })
    if not ok then srv:close() error(werr, 0) end
  end

  local ok, rerr = srv:run()
  srv:close()
  if cfg.ready_file then os.remove(cfg.ready_file) end
  if not ok and rerr ~= nil and not (type(rerr) == "table" and rerr.kind == "interrupted") then
    error(rerr, 0)
  end
  if not cfg.quiet then io.stderr:write("ghlua sim: stopped\n") end
  return 0
end

return M
