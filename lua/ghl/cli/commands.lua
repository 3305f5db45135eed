-- ghl.cli.commands: the command table of `ghlua` and the walk over it
-- (ghl.cli is the dispatcher, ghl.cli.help renders the help).
-- The table is a tree of nodes. The root is ghlua itself; each command is a
-- module ghl.cli.NAME, and a module is a node: it declares
--   summary      one line, shown in command lists and completion menus
--   usage        the usage line (computed for a node with subcommands)
--   help         more text for --help (a string, or a function giving one)
--   flags        its flags, in the spec format of ghl.cli.args (the same
--                table its run passes to args.parse)
--   arguments    its operands, in order: {"NAME", complete = ..., many =}
--   subcommands  child nodes: tables like this one, or names of modules
--   aliases      other names a subcommand answers to; hidden: not listed;
--                raw: its arguments reach run untouched (no --help, no -v)
--   run(argv)    the work: argv is what follows the node's name; returns
--                the exit status. A node without run is run by its nearest
--                ancestor that has one, which receives the subcommand names.
--   runs_alone   true: with subcommands, the node still runs itself when
--                the next word names none of them (ghlua sim [flags];
--                ghlua sim env)
--   run_by, entry  instead of run: the node is run by another app, the
--                module run_by (required by the program's entry point, never
--                by this app), function entry (default "run"), called
--                with {opts=, args=, usage=, command=}: the flags parsed
--                and checked as for any node, the operands (none unless
--                the node declares arguments), its usage line for the
--                app's usage errors (ghl.cli's M.start)
-- Nothing is run to read the table: help, completion (ghl.cli.completion)
-- and the man page (ghl.cli.man) walk it, so the definition of a command
-- that another app runs is here too, as data. The dispatcher handles, for
-- every node, --help and -h (usage and help on stdout, exit 0), the global
-- -v, unknown subcommands ("did you mean", exit 2), then calls run.
local E = require "ghl.error"

local M = {}

-- ---- Commands another app runs ----

-- `ghlua sim` and `ghlua sim env`: the simulator app runs them
-- (ghl.sim.main, started by main.c); their command-line definition is
-- the command-line app's data, here.
local sim = { name = "sim", run_by = "ghl.sim.main", entry = "run" }

sim.summary = "run a local HighLevel API simulator (OAuth, contacts, opportunities, calendars, ...)"

sim.usage = "ghlua sim [--port N] [--host H] [--tls --cert F --key F] [--contacts N] [--opportunities N] [--seed N]"
  .. " [--location ID] [--token T]... [--tokens FILE] [--pit T[:ID]]... [--ready-file F]"
  .. " [--app ID [--app-secret S] [--redirect-uri URI]... [--app-scopes LIST] [--app-type T] [--whitelabel]]"
  .. " [--apps FILE] [--company ID] [--locations N] [--inactive-location ID]..."
  .. " [--auto-approve [ID|company|company:ID,...]] [--deny] [--token-ttl S] [--code-ttl S]"
  .. " [--token-delay-ms N] [--token-delay-phase before|after]"
  .. " [--webhook-url URL] [--webhook-key PEM] [--webhook-legacy-rsa] [--webhook-retry-delay S]"
  .. " [--rate-max N] [--rate-interval-ms N] [--rate-daily N] [--faults] [--strict-version] [--quiet]"
  .. " | ghlua sim env [--port N | --ready-file F] [--token] [--shell sh|fish] [--unset]"

sim.help = [[
Serve a simulated HighLevel V2 API (services.leadconnectorhq.com) and its
OAuth install screen (marketplace.gohighlevel.com) on loopback, until
Ctrl-C. Then, in another shell:

  eval "$(ghlua sim env)"   point ghlua at it: GHLUA_API_BASE,
                        GHLUA_MARKETPLACE_BASE and its app's GHL_CLIENT_ID,
                        GHL_CLIENT_SECRET, GHL_REDIRECT_URI (see 'ghlua sim
                        env --help': --port N when several run, --token,
                        --shell fish, --unset)

The simulator prints that line once it listens (with --port N when other
simulators run). It records itself for 'ghlua sim env' under
$GHLUA_HOME/sim (0600) while it runs, unless --ready-file is given.

Server
  --port N              port to listen on (default 0: any free port)
  --host H              address to bind (default 127.0.0.1)
  --tls --cert F --key F  serve HTTPS with this PEM certificate and key
  --ready-file F        once listening, write a JSON file (mode 0600; for
                        tests and demos only: it holds the secrets) with
                        url, pid, locationId, token, tokenGenerated,
                        companyId, userId, locations, apps (client_id,
                        client_secret, secret_generated, redirect_uris,
                        scopes, user_type, whitelabel), pits, authorizeUrl,
                        tokenUrl, caFile (with --tls); it is removed at
                        exit. Then 'ghlua sim env --ready-file F' reads it
  --quiet               no per-request log on stderr

Data
  --contacts N          seed N deterministic contacts in the default location
  --opportunities N     seed N deterministic opportunities in the default
                        location, spread over its contacts (10 contacts are
                        seeded first when there are none)
  --seed N              random seed for ids and seed data (default 1)
  --location ID         default location id (default ve9EPM428h8vShlRW1KT)
  --company ID          company (agency) id (default 5DP4iH6HLkQsiKESj6rh)
  --locations N         N more locations in the company (default 0)
  --inactive-location ID  mark a location not active (repeatable; added if new)

Static tokens (every scope, never expire)
  --token T             accept bearer token T for the default location (repeatable)
  --tokens FILE         more tokens, one per line: TOKEN [LOCATION_ID]; '#' comments
  --pit T[:ID]          accept Private Integration Token T for location ID (default:
                        the default location) or, when ID is the company id, for
                        the agency (repeatable); refused by /oauth/locationToken
                        and /oauth/installedLocations

OAuth apps (without any: one app with a generated client id and secret)
  --app CLIENT_ID       an app with this client id ("<appId>-<suffix>")
  --app-secret S        its client secret (default: random)
  --redirect-uri URI    a registered redirect URI (repeatable; default
                        http://localhost:3000/oauth/callback)
  --app-scopes LIST     the app's scope set, space or comma separated
                        (default: every scope valid for its target user)
  --app-type T          target user: Location (sub-account, default) or Company
  --whitelabel          mark the app white-label (informational on loopback)
  --apps FILE           a JSON array of {client_id, client_secret,
                        redirect_uris, scopes, user_type, whitelabel}
  (--app-secret, --redirect-uri, --app-scopes, --app-type, --whitelabel
  without --app or --apps set up the generated app)

Consent and tokens
  --auto-approve [ID|company|company:ID,...]  the consent GET answers 302 to
                        the redirect URI at once, installing the app:
                          ID       on that location (a Location token)
                          company  on the agency and every location, and on
                                   locations added later (approveAllLocations,
                                   installToFutureLocations)
                          company:ID,ID  on the agency and those locations
                                   only, not on locations added later
                        Without a value: the default location, or for
                        Company-type apps "company". Without the flag the
                        consent page lets you choose (an agency install:
                        all sub-accounts or some, and future ones)
  --deny                approving redirects with error=access_denied instead
  --token-ttl S         access token lifetime, expires_in (default 86399)
  --code-ttl S          authorization code lifetime (default 600)
  --token-delay-ms N    delay every /oauth/token answer by N ms (crash tests)
  --token-delay-phase P before: the request takes effect only once the new
                        pair is first used (a client killed meanwhile has
                        consumed nothing; presenting the same grant again
                        drops the first request); after (default): it takes
                        effect at once (the refresh token is already rotated
                        while the answer waits)

Rate limits and faults
  --rate-max N          requests per burst window (default 100)
  --rate-interval-ms N  burst window length (default 10000)
  --rate-daily N        requests per day (default 200000)
  --faults              mount the /__fault/ test routes
  --strict-version      simulator-strict: answer 401 "version header is
                        invalid" to a published Version that is not the route
                        family's own: 2021-07-28 for contacts, locations,
                        opportunities, users and the OAuth helpers, 2021-04-15
                        for calendars and conversations, v3 for v3 routes. The
                        live API accepts any published version (FACTS §14).

Installs follow HighLevel's agency model (FACTS §3): a Company consent
installs the app on the agency and on the locations it approved, and its
token answer lists them (approvedLocations, isBulkInstallation,
approveAllLocations, installToFutureLocations). Only those locations are
installed: /oauth/locationToken, /oauth/location-token and
/oauth/reconnect refuse the others with 400 "The app is not installed on
this location.", and /oauth/installedLocations shows isInstalled false for
them (its count is every location under the company). POST
/__sim/locations adds a location, installing the apps that asked for
future locations.

Limits are kept per app and per location (or company, for Company tokens).
Both windows are fixed, not sliding: a burst window opens with the first
request of a bucket and lasts --rate-interval-ms, the day is 86,400 s from
the first request; refused requests do not count. Every API answer carries
X-RateLimit-Limit-Daily, -Daily-Remaining, -Interval-Milliseconds, -Max and
-Remaining, 429s included; a 429 for the daily limit has
X-RateLimit-Daily-Remaining 0 and a message saying the daily limit is reached.

Webhooks (FACTS §9; receive them with 'ghlua webhook serve')
  --webhook-url URL     POST signed events to URL: ContactCreate, ContactUpdate,
                        ContactDelete, ContactTagUpdate on contact writes,
                        INSTALL when an app is first installed (a consent:
                        for an agency install, one for the agency and one
                        per approved location; a location added later),
                        UNINSTALL on POST /__sim/uninstall
                        {"locationId":ID | "companyId":ID [, "clientId":ID]}
                        (the company: the agency and each of its locations).
                        Deliveries never hold up the API; a 429 answer is
                        retried like HighLevel does (6 times)
  --webhook-retry-delay S  seconds before such a retry (default 600)
  --webhook-key PEM     sign with this Ed25519 private key (PEM text or file;
                        ready file: webhookPrivateKey). Default: your
                        development key, $GHLUA_HOME/sim-webhook-key.pem (made
                        on first use, mode 0600; ready file: webhookKeyFile),
                        which 'ghlua webhook serve', 'verify' and 'trigger'
                        on this machine use too, so the loop needs no key
                        flags; a receiver trusts it only while its
                        GHLUA_API_BASE is a local simulator (see 'ghlua
                        webhook --help'). The public key is printed (SPKI
                        base64, for --public-key) and written to the ready
                        file (webhookPublicKey, webhookPublicKeySpki)
  --webhook-legacy-rsa  also send X-WH-Signature (RSA-SHA256, a generated
                        2048-bit key: webhookRsaPublicKey in the ready file)
  GET /__sim/webhooks shows the key and the recent deliveries; POST
  /__sim/webhooks {"type":...} signs and sends any event.

Without --token or --tokens a random static token is generated; it is
written to the ready file and shown on stdout only as its last four
characters, like client secrets.

Routes: GET /v2/oauth/chooselocation and /oauth/chooselocation (consent;
no auth), POST /oauth/token (form only), POST /oauth/reconnect (JSON),
POST /oauth/locationToken, GET /oauth/installedLocations (skip/limit),
GET /oauth/installed-locations and POST /oauth/location-token (Version
v3; pageSize/pageToken, camelCase answer), /contacts
(create, get, update, delete, upsert, search, list, tags, notes, duplicate),
/opportunities (pipelines, create, get, update, delete, GET and POST
search), /calendars (list, free-slots, appointments: create, get),
/conversations (POST messages: SMS and Email, GET search), /users (list,
get), /locations/{id}, /locations/search (skip/limit),
/locations/{id}/customFields, /locations/{id}/customValues,
/locations/{id}/tags. API routes need "Version" and "Authorization:
Bearer"; OAuth tokens carry only their granted scopes.

Simulator routes: GET /__sim/stats (counters, "oauth" section), GET|PUT
/__sim/oauth (delay, TTLs, auto-approve at run time), POST /__sim/locations
{"id":ID, "name":...} (a new location; 201 with the apps installed on it),
PUT /__sim/locations/{id} {"active":false}, GET|PUT /__sim/clock
{"advance":3600} or {"now":EPOCH} (moves the simulator's clock forward:
token expiry, JWT iat/exp, rate-limit windows, webhook retries follow it;
answers {"now":EPOCH,"offset":S}), and for retry tests:
  PUT /__sim/chaos {"rules":[{"method":"GET","path":"/contacts/","times":2,
      "status":503}, ...]}  the next matching requests fail: status (with
      optional message, headers, or body: the raw body, e.g. "" for an
      empty 200), reset, close, and/or delay_ms; path is the
      request path or route template, trailing slash ignored, never a
      prefix (or "pattern": a Lua pattern). A rule fires after the route
      matched and, on API routes, after the Version, token, scope and rate
      limit checks; before the handler, so a failed request had no effect
      (delay_ms alone: the request takes effect, its answer comes late).
      GET shows the rules left, DELETE drops them.
  GET /__sim/requests  the last 1000 requests (method, path, query, route,
      version, status, at, chaos); ?method=&path= filter; DELETE empties.
]]

local FILE = { "string", value = "F", complete = "file" }
sim.flags = {
  port = "number", host = "string", tls = "flag", cert = FILE, key = FILE,
  contacts = "number", seed = "number", location = "string", token = "list",
  tokens = FILE, ["ready-file"] = FILE, ["rate-max"] = "number",
  ["rate-interval-ms"] = "number", ["rate-daily"] = "number", faults = "flag",
  quiet = "flag",
  pit = "list", app = "string", ["app-secret"] = "string", ["redirect-uri"] = "list",
  ["app-scopes"] = { "string", value = "LIST", complete = "scope" },
  ["app-type"] = { "string", value = "T", complete = { "Location", "Company" } }, whitelabel = "flag", apps = FILE,
  company = "string", locations = "number", ["inactive-location"] = "list",
  ["auto-approve"] = { "string", value = "ID,...", optional = "default", complete = { "company" } },
  deny = "flag", ["token-ttl"] = "number", ["code-ttl"] = "number",
  ["token-delay-ms"] = "number", ["token-delay-phase"] = { "string", value = "P", complete = { "before", "after" } },
  opportunities = "number", ["strict-version"] = "flag",
  ["webhook-url"] = "string", ["webhook-key"] = FILE, ["webhook-legacy-rsa"] = "flag",
  ["webhook-retry-delay"] = "number",
}

local env_usage = "ghlua sim env [--port N | --ready-file F] [--token] [--shell sh|fish] [--unset]"

local env_help = [[
Print the shell lines that point ghlua at a running simulator, for
eval "$(ghlua sim env)" in another shell (fish: ghlua sim env --shell fish | source):
  GHLUA_API_BASE, GHLUA_MARKETPLACE_BASE  the simulator's URL
  GHL_CLIENT_ID, GHL_CLIENT_SECRET, GHL_REDIRECT_URI  its first OAuth app
                        (the secret only when the simulator generated it;
                        one given with --app-secret or --apps is yours)
  GHLUA_CA_BUNDLE       its certificate, when it serves HTTPS (--tls)
and unsets GHL_TOKEN and GHL_LOCATION_ID, so no token of another account
goes to the simulator. On a terminal, secrets are shown as …abcd; eval
gets them in full.

  --port N              the simulator listening on port N, when several run
  --ready-file F        the simulator started with --ready-file F
  --token               also GHL_TOKEN and GHL_LOCATION_ID: the simulator's
                        generated static token (every scope, no login needed)
  --shell sh|fish       the syntax (default sh: bash, zsh, dash, ...)
  --unset               print the lines that unset all of these instead

Running simulators are recorded under $GHLUA_HOME/sim (default
~/.config/ghlua/sim), so both shells need the same GHLUA_HOME.
]]

local ENV_FLAGS = { port = { "number", value = "N" }, ["ready-file"] = { "string", value = "F", complete = "file" },
  token = "flag", shell = { "string", value = "SHELL", complete = { "sh", "fish" } }, unset = "flag" }

-- `ghlua sim env` is a subcommand; `ghlua sim [flags]` runs the simulator.
sim.runs_alone = true
sim.subcommands = {
  { name = "env", summary = "print the shell lines that point ghlua at a running simulator",
    usage = env_usage, help = env_help, flags = ENV_FLAGS, run_by = "ghl.sim.main", entry = "env" },
}

-- ---- The command table ----

-- Commands in the order --help lists them (modules, or nodes).
M.commands = { "ghl.cli.auth", "ghl.cli.app", "ghl.cli.api", "ghl.cli.run", "ghl.cli.scopes", sim,
  "ghl.cli.webhook", "ghl.cli.store", "ghl.cli.sso", "ghl.cli.completion", "ghl.cli.help",
  { name = "__complete", hidden = true, raw = true,
    summary = "print completion candidates (used by the completion scripts)",
    usage = "ghlua __complete WORD... CURRENT",
    run = function(argv) return require("ghl.cli.completion").complete_command(argv) end } }

-- The root: ghlua's own options, parsed by main.c (they come before the
-- script or command); -v is global: it is also taken after a command.
M.root = {
  name = "ghlua",
  summary = "a Lua 5.4 interpreter with the HighLevel (LeadConnector) API built in",
  usage = "ghlua [options] [script [args...]]\n       ghlua COMMAND [args...]",
  flags = {
    e = { "list", short = "e", long = false, value = "CODE", desc = "run CODE (may be repeated)" },
    l = { "list", short = "l", long = false, value = "MODULE", desc = "require MODULE into a global of the same name" },
    i = { "flag", short = "i", long = false, desc = "enter the REPL after running the script or -e code" },
    v = { "flag", short = "v", long = false, global = true,
          desc = "trace HTTP requests and responses on stderr (secrets redacted); also after a command" },
    quiet = { "flag", desc = "no notices on stderr (rate-limit waits, retries); those are shown only when"
      .. " stderr is a terminal" },
    store = { "string", value = "URL|PATH", complete = "file",
              desc = "the token store: a SQLite file, or a PostgreSQL connection string (postgresql://USER@HOST/DB or"
                .. " 'host=... dbname=...') shared by several machines; same as GHLUA_STORE" },
    version = { "flag", desc = "print the versions of ghlua and its libraries" },
    help = { "flag", short = "h", desc = "show this help (--help COMMAND: the command's)" },
  },
  arguments = { { "script", complete = "file" } },
  subcommands = M.commands,
  -- Extra lines of the options list: not flags.
  operands = {
    { "-", "run standard input" },
    { "--", "stop handling options" },
  },
  notes = [[
With no arguments on a terminal, ghlua starts the REPL.

A first argument that is a command's name runs the command (to run a file
of that name, write ./NAME). Any other is a script file, as lua takes it;
but a word with no '/' and no '.' that names no file is taken as a
mistyped command: ghlua suggests the nearest and exits 2.]],
  environment = {
    { "GHLUA_TRACE=1", "same as -v" },
    { "GHLUA_CA_BUNDLE", "a PEM file of extra trusted CA certificates, added to the system roots (TLS verification is always on)" },
    { "GHLUA_DEBUG=1", "add tracebacks to expected errors" },
    { "GHLUA_QUIET=1", "same as --quiet" },
    { "GHLUA_HOME", "where the token store and the REPL history live (default $XDG_CONFIG_HOME/ghlua, else ~/.config/ghlua)" },
    { "GHLUA_STORE", "the token store: a SQLite file (default $GHLUA_HOME/ghlua.db) or a PostgreSQL connection string (postgresql://...)" },
    { "GHLUA_STORE_KEY, GHLUA_STORE_KEY_FILE", "the key that seals the store's secrets (AES-256-GCM; required on PostgreSQL; 'ghlua store key new' makes one)" },
    { "GHLUA_HISTFILE", "the REPL history file (/dev/null: none)" },
    { "GHLUA_API_BASE", "API base URL (default https://services.leadconnectorhq.com)" },
    { "GHLUA_MARKETPLACE_BASE", "scheme and host of authorization links" },
    { "GHL_CLIENT_ID, GHL_CLIENT_SECRET, GHL_REDIRECT_URI", "an app without 'ghlua app add'" },
    { "GHL_LOCATION_ID", "the default location" },
    { "GHL_TOKEN", "a bearer token for 'ghlua api' and 'ghlua run'" },
    { "GHL_PIT", "a Private Integration Token for 'ghlua auth pit add'" },
    { "GHL_SSO_SECRET", "the app's Shared Secret for 'ghlua sso'" },
    { "NO_COLOR", "when set and not empty, never colour" },
    { "BROWSER", "the browser 'ghlua auth login' opens (else xdg-open)" },
    { "http_proxy, https_proxy, no_proxy", "honoured as libcurl does" },
  },
  files = {
    { "$GHLUA_HOME/ghlua.db", "the token store (SQLite; directory 0700, file 0600): apps, tokens, webhook events" },
    { "$GHLUA_HOME/history", "the REPL history (statements that hold a secret are left out)" },
  },
  exit_status = "0 success, 1 failure, 2 usage error.",
  examples = {
    { "ghlua sim --ready-file /tmp/sim.json", "run the simulator" },
    { "ghlua app add myapp --client-id ID --redirect-uri http://localhost:8080/callback --scopes contacts",
      "store an app (the secret is asked for)" },
    { "ghlua auth login --app myapp", "approve it in a browser and store the tokens" },
    { "ghlua api GET /contacts/ --paginate --ndjson", "page through the contacts" },
    { "ghlua run bulk_tag.lua --param tag=vip --dry-run", "show the writes a recipe would make, and make none" },
    { "ghlua -e 'print(#require(\"ghl\").client{location = \"LOC\"}:get(\"/contacts/\").contacts)'",
      "script the API with the stored token of location LOC" },
    { "source <(ghlua completion bash)", "complete commands, flags, scopes, app names and API paths" },
  },
}

-- ---- The tree ----

-- A subcommand entry as a node: a module name is required (and named
-- after its last segment), a table is the node itself.
local function resolve(entry)
  if type(entry) ~= "string" then return entry end
  local node = require(entry)
  node.name = node.name or entry:match("([^.]+)$")
  return node
end

-- children(node) -> its subcommand nodes, in order (hidden ones included).
function M.children(node)
  local out = {}
  for i, entry in ipairs(node.subcommands or {}) do out[i] = resolve(entry) end
  return out
end

-- child(node, word) -> the subcommand named (or aliased) word, or nil.
-- Only the module of the one named is loaded.
function M.child(node, word)
  for _, entry in ipairs(node.subcommands or {}) do
    if type(entry) == "string" and entry:match("([^.]+)$") == word then return resolve(entry) end
  end
  for _, c in ipairs(M.children(node)) do
    if c.name == word then return c end
    for _, a in ipairs(c.aliases or {}) do if a == word then return c end end
  end
  return nil
end

-- find(words) -> node, path (the names from the root), or nil, path, word
-- (the first word that names no subcommand).
function M.find(words)
  local node, path = M.root, {}
  for _, w in ipairs(words) do
    local c = M.child(node, w)
    if not c then return nil, path, w end
    node = c
    path[#path + 1] = c.name
  end
  return node, path
end

-- walk(fn): fn(node, path) for every node under the root, parents first.
function M.walk(fn, node, path)
  node, path = node or M.root, path or {}
  for _, c in ipairs(M.children(node)) do
    local p = table.move(path, 1, #path, 1, {})
    p[#p + 1] = c.name
    fn(c, p)
    M.walk(fn, c, p)
  end
end

-- The names a word might have meant among the visible subcommands of node:
-- those it starts, or within one edit (two for longer words; a swap of two
-- neighbours counts one); nearest first, then by name.
function M.suggest(node, word)
  local distance = require("ghl.scopes").distance
  local scored = {}
  for _, c in ipairs(M.children(node)) do
    if not c.hidden then
      local name, limit = c.name, #word < 5 and 1 or 2
      local d = distance(word, name, limit)
      if #word >= 2 and name:sub(1, #word) == word then d = math.min(d, 1) end
      if d > limit and #word == #name then   -- one transposition
        for i = 1, #word - 1 do
          if word:sub(1, i - 1) .. word:sub(i + 1, i + 1) .. word:sub(i, i) .. word:sub(i + 2) == name then d = 1 end
        end
      end
      if d <= limit then scored[#scored + 1] = { name = name, d = d } end
    end
  end
  table.sort(scored, function(a, b)
    if a.d ~= b.d then return a.d < b.d end
    return a.name < b.name
  end)
  local out = {}
  for i, s in ipairs(scored) do out[i] = s.name end
  return out
end

function M.quoted_list(names)
  local q = {}
  for i, n in ipairs(names) do q[i] = "'" .. n .. "'" end
  if #q <= 1 then return q[1] or "" end
  return table.concat(q, ", ", 1, #q - 1) .. " or " .. q[#q]
end

-- The usage line of a node: its own, or for a node with subcommands
-- "ghlua PATH SUBCOMMAND [options]  (a, b, c)".
function M.usage_of(node, path)
  if node.usage then return node.usage end
  local names = {}
  for _, c in ipairs(M.children(node)) do if not c.hidden then names[#names + 1] = c.name end end
  return ("ghlua %s SUBCOMMAND [options]  (%s)"):format(table.concat(path, " "), table.concat(names, ", "))
end

-- The usage error for a word that names no subcommand of node.
function M.unknown(node, path, word)
  local what = #path == 0 and "command" or (table.concat(path, " ") .. " subcommand")
  local near = M.suggest(node, word)
  E.raise { kind = "usage", message = ("unknown %s '%s'%s"):format(what, word,
    #near > 0 and (" (did you mean " .. M.quoted_list(near) .. "?)") or ""),
    hint = #path == 0 and "see 'ghlua --help' for the commands" or
      ("see 'ghlua %s --help' for its subcommands"):format(table.concat(path, " ")) }
end

return M
