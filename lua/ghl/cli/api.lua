-- ghl.cli.api: the `ghlua api METHOD PATH` command, curl for the HighLevel
-- API with the client's tokens, Version headers, rate limiting and
-- pagination. Query parameters come from -q, a JSON body from -f fields or
-- -d text (sent as written: lua-cjson would turn [] into {} and round
-- numbers); the answer is printed through libjq (ghl.jq), which keeps the
-- body's arrays, objects and numbers: pretty, sorted and coloured on a
-- terminal, compact (one line, the server's key order) otherwise, or
-- filtered with --jq. --dry-run prints the request (or a curl command)
-- without sending it.
-- Errors: bad flags, bad JSON in -d/-f, an unfilled {placeholder} and a
-- --jq filter that does not compile are usage errors (exit 2); HTTP errors
-- and transport failures are the client's ghl.error (exit 1, one line with
-- the hint), and so is a --jq runtime error or a filter that ghl.jq ended
-- (it runs in a process of its own, under limits: see ghl.jq).
local E = require "ghl.error"
local args = require "ghl.cli.args"
local jq = require "ghl.jq"
local sys = require "ghl.sys"

local M = {}

M.summary = "send one API request (or page through a list) and print the JSON answer"

M.usage = "ghlua api METHOD PATH [-q K=V]... [-f K=V | -f K:=JSON]... [-d JSON|@FILE|@-]"
  .. " [--location ID | --company ID] [--app NAME] [--version V]"
  .. " [--paginate [--max N] [--ndjson] [--style S]] [--include] [--jq FILTER [--raw]]"
  .. " [--pretty | --compact] [--dry-run [--curl]]"

M.help = [[
Send METHOD (any case) to PATH on the API and print the JSON answer.
PATH is a path like /contacts/ or /contacts/{contactId}: {locationId} and
{companyId} come from the token's context (or --location/--company), any
other {name} from a -q name=VALUE parameter (which then leaves the query).

Request
  -q, --query K=V       query parameter (repeatable; a repeated key is sent
                        as several values)
  -f, --field K=V       JSON body field with a string value; K:=JSON gives
                        a raw JSON value (numbers, true, [..], {..}, null).
                        Repeatable; a repeated key becomes an array
  -d, --data JSON       the whole JSON body as text, @FILE to read a file,
                        @- to read standard input (not with -f)
  --version V           the Version header (default: the endpoint's own,
                        from the operations table)
  --location ID, --company ID, --app NAME
                        which stored token to use (see 'ghlua auth status')

Output
  --pretty, --compact   force indented or one-line output. Default: pretty,
                        with sorted keys and colour, on a terminal; compact,
                        in the server's key order, otherwise
  --include             print the status line and the response headers
                        (lower-case names, sorted) before the body
  --jq FILTER           run a jq filter (libjq 1.6) on the body and print
                        each result, one per line when compact; the filter
                        runs in a process of its own, within the limits
                        below
  --raw                 with --jq, print string results without quotes
  --paginate            follow the pages of a list endpoint and print one
                        merged JSON array of the items
  --max N               stop after N items
  --ndjson              print one item per line instead (--jq then runs
                        on each item; without --ndjson on the whole array)
  --style S             the pagination style when ghlua does not know the
                        endpoint: meta, page, skip, offset, token, page_query
  --dry-run             print the request it would send (method and URL,
                        headers with the token redacted, body) and send
                        nothing
  --curl                with --dry-run, print an equivalent curl command
                        instead (token redacted: paste your own)

While --paginate runs, a progress line is shown on standard error when it
is a terminal. A non-JSON answer is printed as it came. Paginated items are
re-encoded from the client's decoded values: there an empty list or object
prints as [] (the client's JSON decoder cannot tell them apart).

Environment
  GHL_TOKEN        a bearer token (Private Integration Token or access token)
                   used as is, unless --app is given; keeps the token out of
                   the command line
  GHL_LOCATION_ID  the location when GHL_TOKEN is used without --location
  GHLUA_API_BASE   the API base URL (default https://services.leadconnectorhq.com)
  NO_COLOR         when set and not empty, never colour
  JQ_COLORS        jq's colour settings
  GHLUA_JQ_TIMEOUT the seconds a --jq filter may run on one body (default
                   30; 0: no limit)
  GHLUA_JQ_MEMORY  the MiB of memory it may use (default 512; 0: no limit)
  GHLUA_JQ_OUTPUT  the MiB it may print for one body (default 1024; 0: no
                   limit)

Exit status: 0 success, 1 an HTTP or network error (its message and hint on
standard error), a --jq runtime error or a filter that was ended (a limit,
an abort inside libjq), 2 a usage error.

Examples
  ghlua api GET /contacts/{contactId} -q contactId=abc123
  ghlua api post /contacts/ -f firstName=Ada -f tags:='["vip"]' -f locationId=$LOC
  ghlua api GET /contacts/ --paginate --ndjson --jq .email --raw
]]

M.flags = {
  query = { "list", short = "q", value = "K=V" }, field = { "list", short = "f", value = "K=V" },
  data = { "string", short = "d", value = "JSON" }, location = args.LOCATION, company = args.COMPANY,
  app = args.APP, version = { "string", value = "V" }, paginate = "flag", max = { "number", value = "N" },
  ndjson = "flag",
  style = { "string", value = "S", complete = { "meta", "page", "skip", "offset", "token", "page_query" } },
  include = "flag", jq = { "string", value = "FILTER" }, raw = "flag", pretty = "flag",
  compact = "flag", ["dry-run"] = "flag", curl = "flag",
}
M.arguments = { { "METHOD", complete = "method" }, { "PATH", complete = "path" } }

local REASONS = {
  [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [422] = "Unprocessable Entity", [429] = "Too Many Requests", [500] = "Internal Server Error",
  [502] = "Bad Gateway", [503] = "Service Unavailable",
}

local function usage(msg)
  args.usage(msg, M.usage)
end

local function shell_quote(s)
  if s:match("^[%w%-%./:=_,@+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- ---- Parsing ----

-- -q K=V... -> the query table (repeated keys become arrays), or nil.
local function query_params(list)
  if not list then return nil end
  local q = {}
  for _, kv in ipairs(list) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then usage(("-q needs KEY=VALUE, got '%s'"):format(kv)) end
    local old = q[k]
    if old == nil then q[k] = v
    elseif type(old) == "table" then old[#old + 1] = v
    else q[k] = { old, v } end
  end
  return q
end

-- -f K=V / K:=JSON... -> the JSON text of the object, keys in order.
local function field_body(list)
  local keys, values = {}, {}
  for _, kv in ipairs(list) do
    local eq = kv:find("=", 1, true)
    if not eq or eq == 1 then usage(("-f needs KEY=VALUE or KEY:=JSON, got '%s'"):format(kv)) end
    local k, v, text = kv:sub(1, eq - 1), kv:sub(eq + 1), nil
    if k:sub(-1) == ":" and #k > 1 then
      k = k:sub(1, -2)
      local ok, err = jq.format(v)
      if not ok then usage(("-f %s:=: %s"):format(k, err.message)) end
      text = v:match("^%s*(.-)%s*$")
    else
      text = jq.encode(v)
    end
    if not values[k] then keys[#keys + 1] = k; values[k] = {} end
    table.insert(values[k], text)
  end
  local parts = {}
  for _, k in ipairs(keys) do
    local v = values[k]
    parts[#parts + 1] = jq.encode(k) .. ":" .. (#v == 1 and v[1] or ("[" .. table.concat(v, ",") .. "]"))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- -d JSON | @FILE | @- -> the body text, checked to be one JSON value.
local function data_body(d)
  local text = d
  if d == "@-" then
    text = io.stdin:read("a") or ""
  elseif d:sub(1, 1) == "@" then
    local f, err = io.open(d:sub(2), "rb")
    if not f then E.raise { kind = "io", message = "cannot read -d file: " .. tostring(err) } end
    text = f:read("a")
    f:close()
  end
  local ok, err = jq.format(text)
  if not ok then usage("-d: " .. err.message) end
  return text
end

-- Check that every {placeholder} of path will get a value.
local function check_placeholders(c, path, query)
  for name in path:gmatch("{([%w_]+)}") do
    local filled = (query and query[name] ~= nil) or (name == "locationId" and c.location)
      or (name == "companyId" and c.company)
    if not filled then
      if name == "locationId" then usage("{locationId} in PATH needs --location ID (or a location token)") end
      if name == "companyId" then usage("{companyId} in PATH needs --company ID (or an agency token)") end
      usage(("{%s} in PATH has no value: pass -q %s=VALUE or write it in the path"):format(name, name))
    end
  end
end

-- The client for the flags: GHL_TOKEN (unless --app), else the store.
local function client(o)
  if o.location and o.company then usage("give --location or --company, not both") end
  local token = os.getenv("GHL_TOKEN")
  local co = { location = o.location, company = o.company, app = o.app }
  if token and token ~= "" and not o.app then co.token = token end
  return require("ghl.client").new(co)
end

-- ---- Output ----

-- How bodies print: {indent, sort, color, raw} for ghl.jq.
local function output_format(o)
  local tty = sys.isatty(1)
  local pretty = o.pretty or (tty and not o.compact)
  local nc = os.getenv("NO_COLOR")
  return { indent = pretty and 2 or 0, sort = pretty and true or false,
           color = tty and pretty and not (nc and nc ~= "") or false, raw = o.raw }
end

local function write(s)
  io.stdout:write(s, "\n")
end

-- Print a body text: through the --jq program, or reformatted, or as it
-- came when it is not JSON.
local function print_body(text, prog, fmt)
  if text == "" then return end
  if prog then
    local ok, err = prog:run(text, fmt, write)
    if not ok then
      if err.kind == "decode" then err.message = "--jq: the response is not JSON: " .. err.message end
      error(err, 0)
    end
    return
  end
  local out = jq.format(text, fmt)
  if out then write(out) else io.stdout:write(text) end
end

local function print_head(resp)
  local names = {}
  for k in pairs(resp.headers) do names[#names + 1] = k end
  table.sort(names)
  io.stdout:write(("HTTP %d %s\n"):format(resp.status, REASONS[resp.status] or ""))
  for _, k in ipairs(names) do io.stdout:write(E.sanitize(k .. ": " .. tostring(resp.headers[k])), "\n") end
  io.stdout:write("\n")
end

local function print_request(req, curl)
  local names = {}
  for k in pairs(req.headers) do names[#names + 1] = k end
  table.sort(names)
  if curl then
    local parts = { "curl" }
    if req.method ~= "GET" then parts[#parts + 1] = "-X " .. req.method end
    parts[#parts + 1] = shell_quote(req.url)
    for _, k in ipairs(names) do parts[#parts + 1] = "-H " .. shell_quote(k .. ": " .. req.headers[k]) end
    if req.body then parts[#parts + 1] = "--data-raw " .. shell_quote(req.body) end
    write(table.concat(parts, " "))
    return
  end
  write(req.method .. " " .. req.url)
  for _, k in ipairs(names) do write(k .. ": " .. req.headers[k]) end
  if req.body then write("") write(req.body) end
end

-- ---- Pagination ----

-- The progress line on stderr (only on a terminal): show(n, total), clear().
local function progress()
  local on, shown = sys.isatty(2), false
  local p = {}
  function p.show(n, total)
    if not on then return end
    io.stderr:write(("\rghlua api: %d%s items"):format(n, total and total ~= require("cjson").null
      and (" of " .. tostring(math.tointeger(total) or total)) or ""))
    shown = true
  end
  function p.clear()
    if shown then io.stderr:write("\r\27[K") shown = false end
  end
  return p
end

-- The pieces jq prints around array elements in this format: opening,
-- separator and closing text (so items can be printed as they arrive).
local function array_frame(fmt)
  local el = jq.encode(0, fmt)
  local two = jq.encode(setmetatable({ 0, 0 }, jq.array_mt), fmt)
  local a = two:find(el, 1, true)
  local b = two:find(el, a + #el, true)
  return two:sub(1, a - 1), two:sub(a + #el, b - 1), two:sub(b + #el)
end

local function paginate(c, method, path, query, body, o, prog, fmt)
  local params = {}
  for k, v in pairs(query or {}) do params[k] = v end
  if body then
    local fields = require("cjson.safe").decode(body)
    if type(fields) ~= "table" or (#fields > 0) then usage("with --paginate, the body must be a JSON object") end
    for k, v in pairs(fields) do params[k] = v end
  end
  local bar = progress()
  local po = { max = o.max, style = o.style, version = o.version, method = method,
               on_page = function(n, total) bar.show(n, total) end }
  local ok, iter = pcall(c.paginate, c, path, params, po)
  if not ok then
    if E.is(iter) then error(iter, 0) end
    usage("--paginate: " .. tostring(iter):gsub("^[^:]*:%d+: ", ""):gsub("opts%.style", "--style"))
  end
  local item_fmt = { indent = fmt.indent, sort = fmt.sort, color = fmt.color, raw = fmt.raw, empty = "array" }
  local all = prog and not o.ndjson and setmetatable({}, jq.array_mt) or nil
  local open, sep, close = array_frame(item_fmt)
  local line_fmt = { indent = 0, sort = false, color = fmt.color, raw = fmt.raw, empty = "array" }
  local n = 0
  local done, err = pcall(function()
    for item in iter do
      bar.clear()
      n = n + 1
      if all then
        all[n] = item
      elseif o.ndjson then
        if prog then print_body(jq.encode(item, { empty = "array" }), prog, line_fmt)
        else write(jq.encode(item, line_fmt)) end
      else
        local text = jq.encode(item, item_fmt)
        if fmt.indent > 0 then text = text:gsub("\n", "\n" .. (" "):rep(fmt.indent)) end
        io.stdout:write(n == 1 and open or sep, text)
      end
    end
  end)
  bar.clear()
  if not done then error(err, 0) end
  if all then
    print_body(jq.encode(all, { empty = "array" }), prog, fmt)
  elseif not o.ndjson then
    write(n == 0 and jq.encode(setmetatable({}, jq.array_mt), item_fmt) or close)
  end
end

-- ---- The command ----

function M.run(argv)
  local o, rest = args.parse(argv, M.flags, M.usage)
  if #rest ~= 2 then usage("expected METHOD and PATH") end
  local method, path = rest[1]:upper(), rest[2]
  if not method:match("^%a+$") then usage("METHOD must be a word like GET or post, got '" .. rest[1] .. "'") end
  if path:sub(1, 1) ~= "/" then usage("PATH must start with '/', got '" .. path .. "'") end
  if o.data and o.field then usage("give -d or -f, not both") end
  if o.pretty and o.compact then usage("give --pretty or --compact, not both") end
  if o.curl and not o["dry-run"] then usage("--curl needs --dry-run") end
  if o.raw and not o.jq then usage("--raw needs --jq") end
  for _, f in ipairs { "max", "ndjson", "style" } do
    if o[f] and not o.paginate then usage("--" .. f .. " needs --paginate") end
  end
  if o.paginate and o.include then usage("--include shows one response: not with --paginate") end
  if o.paginate and o["dry-run"] then usage("--dry-run shows one request: not with --paginate") end
  if o.max and (math.type(o.max) ~= "integer" or o.max < 1) then
    usage("--max must be a positive integer")
  end

  local query = query_params(o.query)
  local body = o.field and field_body(o.field) or o.data and data_body(o.data) or nil
  local prog
  if o.jq then
    local err
    prog, err = jq.compile(o.jq)
    if not prog and err.kind == "usage" then usage("--jq: " .. err.message) end
    if not prog then error(err, 0) end
  end
  local fmt = output_format(o)

  local c = client(o)
  check_placeholders(c, path, query)
  local ropts = { query = query, version = o.version, raw = true, data = not o.paginate and body or nil }

  if o["dry-run"] then
    print_request(c:prepare(method, path, ropts), o.curl)
    return 0
  end
  if o.paginate then
    paginate(c, method, path, query, body, o, prog, fmt)
    return 0
  end
  local resp = c:request(method, path, ropts)
  if resp.error then   -- >= 400, a redirect, or a write whose outcome is unknown
    -- like curl -i, --include shows the failed response too
    if o.include then print_head(resp) print_body(resp.body, nil, fmt) io.stdout:flush() end
    error(resp.error, 0)
  end
  if o.include then print_head(resp) end
  print_body(resp.body, prog, fmt)
  return 0
end

return M
