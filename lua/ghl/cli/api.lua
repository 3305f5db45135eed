-- ghl.cli.api: the `ghlua api METHOD PATH` command, curl for the HighLevel
-- API with the client's tokens, Version headers, rate limiting and
-- pagination. PATH is a path or a full URL on the API's own host (a pasted
-- meta.nextPageUrl); a URL on any other host is refused, so the token never
-- goes anywhere but the configured API base. Query parameters come from -q,
-- a JSON body from -f fields or -d text (sent as written: lua-cjson would
-- turn [] into {} and round numbers), extra headers from -H; the answer is
-- printed through libjq (ghl.jq), which keeps the body's arrays, objects,
-- key order and numbers: pretty, sorted and coloured on a terminal, compact
-- (one line, the server's key order) otherwise, or filtered with --jq; -o
-- writes it to a file instead (atomically). --paginate merges the pages'
-- items, each printed from its own text (so the server's key order, the
-- same from run to run). --dry-run prints the request (or a curl command)
-- without sending it.
-- Errors: bad flags, bad JSON in -d/-f, a bad -H header, a URL on another
-- host, an unfilled {placeholder} and a --jq filter that does not compile
-- are usage errors (exit 2); HTTP errors and transport failures are the
-- client's ghl.error (exit 1, one line with the hint), and so is a --jq
-- runtime error or a filter that ghl.jq ended (it runs in a process of its
-- own, under limits: see ghl.jq), and a -o file that cannot be written
-- (which is then left as it was).
local E = require "ghl.error"
local args = require "ghl.cli.args"
local jq = require "ghl.jq"
local sys = require "ghl.sys"
local util = require "ghl.util"
local http = require "ghl.http"

local M = {}

M.summary = "send one API request (or page through a list) and print the JSON answer"

M.usage = "ghlua api METHOD PATH|URL [-q K=V]... [-f K=V | -f K:=JSON]... [-d JSON|@FILE|@-]"
  .. " [-H 'NAME: VALUE']... [--location ID | --company ID] [--app NAME] [--version V] [--timeout S]"
  .. " [--paginate [--max N] [--ndjson] [--style S]] [--include] [--jq FILTER [--raw]]"
  .. " [--pretty | --compact] [--color WHEN] [-o FILE] [--dry-run [--curl]]"

M.help = [[
Send METHOD (any case) to PATH on the API and print the JSON answer.
PATH is a path like /contacts/ or /contacts/{contactId}: {locationId} and
{companyId} come from the token's context (or --location/--company), any
other {name} from a -q name=VALUE parameter (which then leaves the query).
PATH may also be a full URL on the API's host, such as a meta.nextPageUrl
from an earlier answer: its path and query string are sent to the API base
(GHLUA_API_BASE); a URL on any other host is refused, so the token is never
sent anywhere else.

Request
  -q, --query K=V       query parameter (repeatable; a repeated key is sent
                        as several values)
  -f, --field K=V       JSON body field with a string value; K:=JSON gives
                        a raw JSON value (numbers, true, [..], {..}, null).
                        Repeatable; a repeated key becomes an array
  -d, --data JSON       the whole JSON body as text, @FILE to read a file,
                        @- to read standard input (not with -f)
  -H, --header 'NAME: VALUE'
                        an extra request header (repeatable). 'Version: V'
                        is the same as --version; an empty value ('Accept:')
                        drops a header ghlua would send. Authorization is
                        refused: the token comes from the store or GHL_TOKEN
  --version V           the Version header (default: the endpoint's own,
                        from the operations table)
  --timeout S           give up on each try of a request after S seconds
                        (default 60). A request that is safe to send again
                        (GET, PUT, DELETE) is tried again after a timeout,
                        3 times at most; a POST is not (it fails with "may
                        have been applied")
  --location ID, --company ID, --app NAME
                        which stored token to use (see 'ghlua auth status')

A required locationId (or companyId) missing from the query string or the
top-level JSON body of an endpoint that needs one is filled from the
token's context; one given with -q, -f or -d is never replaced.

Output
  --pretty, --compact   force indented or one-line output. Default: pretty,
                        with sorted keys, on a terminal; compact, in the
                        server's key order, otherwise
  --color WHEN          auto (the default: colour when standard output is
                        a terminal and NO_COLOR is unset), always or never
  -o, --output FILE     write the output to FILE instead of standard output
                        (which then gets nothing): the body exactly as it
                        came, unless --jq, --pretty, --compact, --include
                        or --paginate shape it. FILE is replaced atomically
                        once the whole answer is in, like curl -o replaces
                        it; on any error it is left as it was. A new FILE
                        is made readable by you only (0600: answers carry
                        customer data and sometimes tokens); a replaced one
                        keeps its mode. '-o -' is standard output
  --include             print the status line and the response headers
                        (lower-case names, sorted) before the body
  --jq FILTER           run a jq filter (libjq 1.6) on the body and print
                        each result, one per line when compact; the filter
                        runs in a process of its own, within the limits
                        below
  --raw                 with --jq, print string results without quotes
  --paginate            follow the pages of a list endpoint and print one
                        merged JSON array of the items, each as the server
                        wrote it (its key order), the same from run to run.
                        An endpoint that does not page (or that ghlua does
                        not know, without --style) gives its one answer,
                        printed as it would be without --paginate
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
is a terminal. A non-JSON answer is printed as it came.

Environment
  GHL_TOKEN        a bearer token (Private Integration Token or access token)
                   used as is, unless --app is given; keeps the token out of
                   the command line
  GHL_LOCATION_ID  the location when GHL_TOKEN is used without --location
  GHLUA_API_BASE   the API base URL (default https://services.leadconnectorhq.com)
  NO_COLOR         when set and not empty, no colour (unless --color always)
  JQ_COLORS        jq's colour settings
  GHLUA_JQ_TIMEOUT the seconds a --jq filter may run on one body (default
                   30; 0: no limit)
  GHLUA_JQ_MEMORY  the MiB of memory it may use (default 512; 0: no limit)
  GHLUA_JQ_OUTPUT  the MiB it may print for one body (default 1024; 0: no
                   limit)

Exit status: 0 success, 1 an HTTP or network error (its message and hint on
standard error), a --jq runtime error or a filter that was ended (a limit,
an abort inside libjq), a -o file that cannot be written, 2 a usage error.

Examples
  ghlua api GET /contacts/{contactId} -q contactId=abc123
  ghlua api post /contacts/ -f firstName=Ada -f tags:='["vip"]'
  ghlua api GET /contacts/ --paginate --ndjson --jq .email --raw
  ghlua api GET "$(ghlua api GET /contacts/ --jq .meta.nextPageUrl --raw)"
  ghlua api GET /contacts/ --paginate -o contacts.json
]]

M.flags = {
  query = { "list", short = "q", value = "K=V" }, field = { "list", short = "f", value = "K=V" },
  data = { "string", short = "d", value = "JSON" }, header = { "list", short = "H", value = "'NAME: VALUE'" },
  location = args.LOCATION, company = args.COMPANY,
  app = args.APP, version = { "string", value = "V" }, timeout = { "number", value = "SECONDS" },
  paginate = "flag", max = { "number", value = "N" }, ndjson = "flag",
  style = { "string", value = "S", complete = { "meta", "page", "skip", "offset", "token", "page_query" } },
  include = "flag", jq = { "string", value = "FILTER" }, raw = "flag", pretty = "flag",
  compact = "flag", color = { "string", value = "WHEN", complete = { "auto", "always", "never" } },
  output = { "string", short = "o", value = "FILE", complete = "file" }, ["dry-run"] = "flag", curl = "flag",
}
M.arguments = { { "METHOD", complete = "method" }, { "PATH", complete = "path" } }

local COLOR = { auto = true, always = true, never = true }

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

local shell_quote = util.shell_quote

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
      text = assert(require("ghl.json").encode(v))
    end
    if not values[k] then keys[#keys + 1] = k; values[k] = {} end
    table.insert(values[k], text)
  end
  local parts = {}
  for _, k in ipairs(keys) do
    local v = values[k]
    parts[#parts + 1] = assert(require("ghl.json").encode(k)) .. ":" .. (#v == 1 and v[1] or ("[" .. table.concat(v, ",") .. "]"))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- -d JSON | @FILE | @- -> the body text, checked to be one JSON value.
local function data_body(d)
  local text = d
  if d == "@-" then
    text = io.stdin:read("a") or ""
  elseif d:sub(1, 1) == "@" then
    local err
    text, err = util.slurp(d:sub(2))
    if not text then E.raise { kind = "io", message = "cannot read -d file: " .. tostring(err) } end
  end
  local ok, err = jq.format(text)
  if not ok then usage("-d: " .. err.message) end
  return text
end

-- Headers the client sets itself, by their lower-case name: the canonical
-- spelling (so -H replaces the client's header instead of adding a second
-- one), or false for the ones -H may not set, with the reason.
local OWN_HEADERS = {
  accept = "Accept", ["content-type"] = "Content-Type", version = "Version",
  authorization = false, host = false, ["content-length"] = false, ["transfer-encoding"] = false,
}
local REFUSED = {
  authorization = "the token comes from the store or GHL_TOKEN: choose it with --app, --location"
    .. " or --company",
  host = "requests go to the API base: set GHLUA_API_BASE to change it",
  ["content-length"] = "ghlua sets it from the body",
  ["transfer-encoding"] = "ghlua sets it from the body",
}

-- -H 'Name: value'... -> the headers table (nil when none) and the value
-- of a Version header (nil when none). A name is an HTTP token; a value has
-- no control characters but tabs, so no header can end early and start
-- another (no CR, no LF).
local function header_table(list)
  if not list then return nil end
  local headers, seen, version = {}, {}, nil
  for _, h in ipairs(list) do
    local name, value = h:match("^([^:]*):(.*)$")
    if not name then usage(("-H needs 'NAME: VALUE', got '%s'"):format(E.sanitize(h))) end
    name = name:match("^%s*(.-)%s*$")
    value = value:match("^[ \t]*(.-)[ \t]*$")
    if not name:match("^[%w!#$%%&'*+%-.^_`|~]+$") then
      usage(("-H: '%s' is not a header name (letters, digits and !#$%%&'*+-.^_`|~ only)"):format(E.sanitize(name)))
    end
    if value:find("[\0-\8\10-\31\127]") then
      usage(("-H %s: the value holds a control character (a line break?); headers are one line each"):format(name))
    end
    local lower = name:lower()
    if OWN_HEADERS[lower] == false then usage(("-H %s is not allowed: %s"):format(name, REFUSED[lower])) end
    if seen[lower] then usage(("-H %s is given twice"):format(name)) end
    seen[lower] = true
    if lower == "version" then
      version = value
    else
      headers[OWN_HEADERS[lower] or name] = value
    end
  end
  return next(headers) and headers or nil, version
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

-- The path (with its query string) of url on the API at base, or a usage
-- error. The URL must name the base's host and port, and lie under its
-- path; a URL that names the plain-HTTP form of an https base's host on the
-- default port (http://services.leadconnectorhq.com/...) is taken too. Only
-- its path and query go anywhere: to base, over base's own scheme.
local function api_path(url, base)
  local u, err = http.parse_url(url)
  if not u then usage(("PATH: %s: %s"):format(E.sanitize(url), err.message)) end
  local b = assert(http.parse_url(base))
  if (u.scheme ~= "http" and u.scheme ~= "https") or u.user or u.password
     or (u.host or ""):lower() ~= (b.host or ""):lower()
     or not (u.port == b.port or (u.scheme == "http" and b.scheme == "https" and u.port == 80 and b.port == 443)) then
    usage(("PATH: %s is not on the API's host: give a path, or a URL on %s (GHLUA_API_BASE)")
      :format(E.sanitize(url), base))
  end
  local prefix = (b.path or "/"):gsub("/+$", "")
  local path = u.path or "/"
  if path:sub(1, #prefix) ~= prefix or (#path > #prefix and path:sub(#prefix + 1, #prefix + 1) ~= "/") then
    usage(("PATH: %s is not under the API base %s (GHLUA_API_BASE)"):format(E.sanitize(url), base))
  end
  path = path:sub(#prefix + 1)
  if path == "" then path = "/" end
  return path .. (u.query and ("?" .. u.query) or "")
end

-- Split a query string into a table (repeated keys become arrays),
-- decoding %XX and + (form encoding, as servers write their links).
local function parse_query(qs, into)
  local function dec(s)
    return (s:gsub("%+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
  end
  for pair in qs:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = dec(k), dec(v)
    local old = into[k]
    if old == nil then into[k] = v
    elseif type(old) == "table" then old[#old + 1] = v
    else into[k] = { old, v } end
  end
  return into
end

-- The client for the flags: GHL_TOKEN (unless --app), else the store.
local function client(o)
  if o.location and o.company then usage("give --location or --company, not both") end
  local token = os.getenv("GHL_TOKEN")
  local co = { location = o.location, company = o.company, app = o.app, timeout = o.timeout }
  if token and token ~= "" and not o.app then co.token = token end
  return require("ghl.client").new(co)
end

-- ---- Output ----

-- Where the output goes: standard output, or (with -o FILE) a temporary
-- file beside FILE that replaces it once the command succeeded. Returns
-- {write(...), finish(), abort(), tty}.
local function open_output(name)
  if not name or name == "-" then
    return { write = function(...) io.stdout:write(...) end, finish = function() io.stdout:flush() end,
             abort = function() end, tty = sys.isatty(1), stdout = true }
  end
  if name == "" then usage("-o needs a file name") end
  local target = name
  local st = sys.stat(name)
  if st then
    if st.type ~= "file" then usage(("-o %s: not a regular file"):format(name)) end
    target = sys.realpath(name) or name   -- through a symbolic link, like a shell's > would
  end
  local dir, base = target:match("^(.*)/([^/]*)$")
  if not dir then dir, base = ".", target elseif dir == "" then dir = "/" end
  if base == "" then usage(("-o %s: not a file name"):format(name)) end
  local function fail(err)
    E.raise { kind = "io", message = ("cannot write -o %s: %s"):format(name, E.is(err) and err.message or tostring(err)),
              hint = "pick a file in a directory that exists and that you can write to" }
  end
  local tmp = (".%s.%d.%s.tmp"):format(base:sub(1, 200), sys.getpid(), util.hex(sys.random_bytes(4)))
  local f, err = sys.open(dir, tmp, "w")
  if not f then fail(err) end
  local tmppath = dir .. "/" .. tmp
  local ok, cerr = sys.chmod(tmppath, st and st.mode or 384)   -- 0600 for a new file
  if not ok then f:close(); os.remove(tmppath); fail(cerr) end
  local out, failed = { tty = false }, nil
  function out.write(...)
    if failed then return end
    local wok, werr = f:write(...)
    if not wok then failed = werr end
  end
  function out.abort()
    if f then f:close(); f = nil; os.remove(tmppath) end
  end
  function out.finish()
    local cok, why = f:close()
    f = nil
    if failed or not cok then os.remove(tmppath); fail(failed or why) end
    local rok, rerr = os.rename(tmppath, target)
    if not rok then os.remove(tmppath); fail(rerr) end
  end
  return out
end

local OUT   -- this run's output (open_output)

-- How bodies print: {indent, sort, color, raw} for ghl.jq.
local function output_format(o)
  local tty = OUT.tty
  local pretty = o.pretty or (tty and not o.compact)
  local nc = os.getenv("NO_COLOR")
  local color = o.color == "always" or (o.color ~= "never" and tty and not (nc and nc ~= ""))
  return { indent = pretty and 2 or 0, sort = pretty and true or false, color = color or false, raw = o.raw }
end

local function write(s)
  OUT.write(s, "\n")
end

-- Print a body text: through the --jq program, or reformatted, or as it
-- came when it is not JSON (or when fmt.as_is says so: -o's default).
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
  local out = not fmt.as_is and jq.format(text, fmt)
  if out then write(out) else OUT.write(text) end
end

local function print_head(resp)
  local names = {}
  for k in pairs(resp.headers) do names[#names + 1] = k end
  table.sort(names)
  OUT.write(("HTTP %d %s\n"):format(resp.status, REASONS[resp.status] or ""))
  for _, k in ipairs(names) do OUT.write(E.sanitize(k .. ": " .. tostring(resp.headers[k])), "\n") end
  OUT.write("\n")
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
  local el = assert(jq.format("0", fmt))
  local two = assert(jq.format("[0,0]", fmt))
  local a = two:find(el, 1, true)
  local b = two:find(el, a + #el, true)
  return two:sub(1, a - 1), two:sub(a + #el, b - 1), two:sub(b + #el)
end

-- For each top-level array of a page: its key, its length, then each of
-- its elements (printed compact, as the page wrote them).
local SPLIT = 'if type == "object" then to_entries[] | select(.value | type == "array")'
  .. ' | .key, (.value | length), .value[] else empty end'

-- A client for ghl.client.paginate that sends every page request through
-- c with the -H headers and keeps, for each item table of each page it
-- decoded, the item's own text (text_of[item]): the pager hands out the
-- decoded items, whose key order a Lua table does not keep.
local function page_client(c, headers)
  local splitter = assert(jq.compile(SPLIT))
  local text_of = setmetatable({}, { __mode = "k" })
  local pc = setmetatable({}, { __index = c })
  function pc:request(method, path, opts)
    local ro = {}
    for k, v in pairs(opts or {}) do ro[k] = v end
    ro.raw, ro.headers = true, headers
    local resp = c:request(method, path, ro)
    if resp.error then error(resp.error, 0) end
    if resp.status == 204 or resp.body == "" then return true end
    local page, derr = resp:json()
    if page == nil then
      derr.method, derr.path = method, path
      error(derr, 0)
    end
    if type(page) == "table" then
      local key, arr, want, i = nil, nil, nil, 0
      local ok, err = splitter:run(resp.body, { indent = 0 }, function(text)
        if not key then
          key = require("cjson").decode(text)
          arr = page[key]
        elseif not want then
          want, i = tonumber(text), 0
        else
          i = i + 1
          local item = type(arr) == "table" and arr[i]
          if type(item) == "table" then text_of[item] = text end
        end
        if want and i >= want then key, arr, want = nil, nil, nil end
      end)
      if not ok then error(err, 0) end
    end
    return page
  end
  function pc:get(path, query, opts)
    local ro = {}
    for k, v in pairs(opts or {}) do ro[k] = v end
    ro.query = query or ro.query
    return pc.request(self, "GET", path, ro)
  end
  return pc, function(item) return text_of[item] or assert(require("ghl.json").encode(item, { empty = "array" })) end, splitter
end

-- Does ghl.client.paginate know how to page method path (or was --style given)?
local function pages(method, path, o)
  if o.style then return true end
  local op = require("ghl.api.ops").op(method, (path:gsub("%?.*", "")), o.version == "v3")
  return op and op.page and op.page.style and true or false
end

local function paginate(c, method, path, query, body, o, prog, fmt, headers)
  local params = {}
  for k, v in pairs(query or {}) do params[k] = v end
  local q = path:find("?", 1, true)
  if q then   -- a pasted nextPageUrl: the walk goes on from its cursor
    local given = params
    params = parse_query(path:sub(q + 1), {})
    for k, v in pairs(given) do params[k] = v end
    path = path:sub(1, q - 1)
  end
  if body then
    local fields = require("cjson.safe").decode(body)
    if type(fields) ~= "table" or (#fields > 0) then usage("with --paginate, the body must be a JSON object") end
    for k, v in pairs(fields) do params[k] = v end
  end
  local bar = progress()
  local po = { max = o.max, style = o.style, version = o.version, method = method,
               on_page = function(n, total) bar.show(n, total) end }
  local pc, text_of, splitter = page_client(c, headers)
  local _ <close> = splitter
  local ok, iter = pcall(c.paginate, pc, path, params, po)
  if not ok then
    if E.is(iter) then error(iter, 0) end
    usage("--paginate: " .. tostring(iter):gsub("^[^:]*:%d+: ", ""):gsub("opts%.style", "--style"))
  end
  local item_fmt = { indent = fmt.indent, sort = fmt.sort, color = fmt.color, raw = fmt.raw }
  local all = prog and not o.ndjson and {} or nil
  local open, sep, close = array_frame(item_fmt)
  local line_fmt = { indent = 0, sort = false, color = fmt.color, raw = fmt.raw }
  -- an item's text is compact already: printed as it is unless coloured,
  -- indented or sorted
  local function shaped(text, f)
    if f.indent == 0 and not f.color and not f.sort then return text end
    return assert(jq.format(text, f))
  end
  local n = 0
  local done, err = pcall(function()
    for item in iter do
      bar.clear()
      n = n + 1
      local text = text_of(item)
      if all then
        all[n] = text
      elseif o.ndjson then
        if prog then print_body(text, prog, line_fmt)
        else write(shaped(text, line_fmt)) end
      else
        text = shaped(text, item_fmt)
        if fmt.indent > 0 then text = text:gsub("\n", "\n" .. (" "):rep(fmt.indent)) end
        OUT.write(n == 1 and open or sep, text)
      end
    end
  end)
  bar.clear()
  if not done then error(err, 0) end
  if all then
    print_body("[" .. table.concat(all, ",") .. "]", prog, fmt)
  elseif not o.ndjson then
    write(n == 0 and assert(jq.format("[]", item_fmt)) or close)
  end
end

-- ---- The command ----

-- The request and its output, once the flags are read (r: query, body,
-- headers, prog); OUT is open.
local function send(o, method, path, r)
  local fmt = output_format(o)
  -- -o's default: the body exactly as it came
  fmt.as_is = not OUT.stdout and not (o.pretty or o.compact or o.color == "always")

  local c = client(o)
  if path:sub(1, 1) ~= "/" then path = api_path(path, c.base) end
  check_placeholders(c, path, r.query)
  local ropts = { query = r.query, version = o.version, raw = true, headers = r.headers,
                  data = not o.paginate and r.body or nil }

  if o["dry-run"] then
    print_request(c:prepare(method, path, ropts), o.curl)
    return 0
  end
  if o.paginate and pages(method, path, o) then
    fmt.as_is = nil
    paginate(c, method, path, r.query, r.body, o, r.prog, fmt, r.headers)
    return 0
  end
  ropts.data = r.body
  local resp = c:request(method, path, ropts)
  if resp.error then   -- >= 400, a redirect, or a write whose outcome is unknown
    -- like curl -i, --include shows the failed response too (never into -o's file)
    if o.include and OUT.stdout then print_head(resp) print_body(resp.body, nil, fmt) io.stdout:flush() end
    error(resp.error, 0)
  end
  if o.include then print_head(resp) end
  print_body(resp.body, r.prog, fmt)
  return 0
end

function M.run(argv)
  local o, rest = args.parse(argv, M.flags, M.usage)
  if #rest ~= 2 then usage("expected METHOD and PATH") end
  local method, path = rest[1]:upper(), rest[2]
  if not method:match("^%a+$") then usage("METHOD must be a word like GET or post, got '" .. rest[1] .. "'") end
  if path:sub(1, 1) ~= "/" and not path:match("^%a[%w+.-]*://") then
    usage("PATH must start with '/' or be a URL on the API's host, got '" .. path .. "'")
  end
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
  if o.timeout and not (o.timeout > 0 and o.timeout <= 86400) then
    usage("--timeout must be a number of seconds above 0 (at most 86400)")
  end
  if o.color and not COLOR[o.color] then
    usage(("--color must be auto, always or never, got '%s'"):format(o.color))
  end

  local r = { query = query_params(o.query) }
  r.body = o.field and field_body(o.field) or o.data and data_body(o.data) or nil
  local hversion
  r.headers, hversion = header_table(o.header)
  if hversion then
    if o.version and o.version ~= hversion then usage("give --version or -H 'Version: ...', not both") end
    o.version = hversion
  end
  if o.jq then
    local err
    r.prog, err = jq.compile(o.jq)
    if not r.prog and err.kind == "usage" then usage("--jq: " .. err.message) end
    if not r.prog then error(err, 0) end
  end

  OUT = open_output(o.output)
  local ok, status = pcall(send, o, method, path, r)
  if not ok then
    OUT.abort()
    error(status, 0)
  end
  OUT.finish()
  return status
end

return M
