-- `ghlua run` against hostile recipes (tests/recipes/hostile/, one file per
-- attack). Each row of the tables below names a recipe, the scene it runs
-- in (parameters, files, working directory, flags) and what must come of
-- it; every row also checks what no attack may achieve:
--   * no secret (the simulator's token, the stored access and refresh
--     tokens, the app's client secret) in ghlua's stdout or stderr;
--   * nothing reaches the loopback listener (a second host the attacks aim
--     the bearer token at);
--   * with the token store: its tokens and apps are unchanged, and a call
--     with it still works afterwards.
-- Outcomes:
--   sandbox    the recipe caught every attempt and returned the error
--              kinds (a string or a list): each one is "sandbox"; exit 0
--   refused    uncaught: exit 1, one line on stderr starting "ghlua: "
--   contained  the attack may fail any way it likes (exit 0, or 1 with one
--              line): only its effect is checked
--   ok         exit 0 (positive controls), then `check`
--   timeout / memory   exit 1, one line naming --timeout / --max-memory
-- Each ghlua runs under `timeout -s KILL` so that a missing limit fails a
-- test instead of hanging the suite; the limit recipes are bounded too and
-- return "survived" when nothing stopped them.
local sim = require "support.sim"
local run = require "support.run"
local oauth = require "support.oauth"
local agency = require "support.agency"
local listener = require "support.listener"
local http = require "ghl.http"
local cjson = require "cjson"

local SRC = os.getenv("GHLUA_SRC") or "."
local CORPUS = SRC .. "/tests/recipes/hostile/"
local SAFETY = 60   -- seconds before a run is killed (a hang, not a limit)
local q = run.quote

local GRANTED = "contacts.readonly contacts.write locations.readonly locations/customFields.readonly users.readonly"

-- ---- Files ----

local scratch
setup(function()
  scratch = os.tmpname()
  os.remove(scratch)
  assert(os.execute("mkdir -p " .. q(scratch)))
end)
teardown(function() os.execute("rm -rf " .. q(scratch)) end)

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

local function exists(path)
  return os.execute("test -e " .. q(path) .. " -o -L " .. q(path)) == true
end

local function mkdir(path)
  assert(os.execute("mkdir -p " .. q(path)))
  return path
end

local function symlink(target, link)
  assert(os.execute("ln -sfn " .. q(target) .. " " .. q(link)))
  return link
end

-- A fresh directory for one row's scene.
local scenes = 0
local function scene()
  scenes = scenes + 1
  return mkdir(("%s/scene%d"):format(scratch, scenes))
end

-- Copy a corpus recipe into dir (for scenes around the recipe itself).
local function copy_recipe(name, dir)
  return write(dir .. "/" .. name .. ".lua", run.slurp(CORPUS .. name .. ".lua"))
end

-- ---- Running ----

-- ghlua ARGS with env, in cwd (default: the scratch directory).
local function ghlua(args, env, cwd)
  local parts = { "cd", q(cwd or scratch), "&&", "exec", "timeout", "-s", "KILL", tostring(SAFETY),
                  q(os.getenv("GHLUA")) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  return run.sh("sh -c " .. q(table.concat(parts, " ")), { env = env })
end

local function show(r)
  return ("exit %s\n--- stdout\n%s--- stderr\n%s"):format(tostring(r.code), r.out, r.err)
end

local function one_line_error(r, pattern)
  assert.are.equal(1, r.code, show(r))
  assert.matches("^ghlua: [^\n]*\n$", r.err, nil, nil, show(r))
  assert.is_nil(r.err:find("traceback", 1, true), show(r))
  if pattern then assert.matches(pattern, r.err, nil, nil, show(r)) end
end

local function decoded(r)
  local ok, v = pcall(cjson.decode, r.out)
  assert(ok and v ~= nil, "stdout is not JSON:\n" .. show(r))
  return v
end

-- The recipe's answer: a list of error kinds, each "sandbox".
local function all_sandbox(r, n)
  assert.are.equal(0, r.code, show(r))
  local word = r.out:match("^([%w_ :%-]+)\n$")
  local v = word and { word } or decoded(r)
  if type(v) == "string" then v = { v } end
  assert.is_table(v, show(r))
  if n then assert.are.equal(n, #v, show(r)) end
  for i, k in ipairs(v) do assert.are.equal("sandbox", k, ("attempt %d: %s\n%s"):format(i, k, show(r))) end
end

local OUTCOMES = {
  sandbox = function(r, row) all_sandbox(r, row.n) end,
  refused = function(r) one_line_error(r) end,
  contained = function(r)
    if r.code ~= 0 then one_line_error(r) end
  end,
  ok = function(r) assert.are.equal(0, r.code, show(r)) end,
  timeout = function(r)
    one_line_error(r, "%-%-timeout")
    assert.is_nil(r.out:find("survived", 1, true), show(r))
  end,
  memory = function(r)
    one_line_error(r, "%-%-max%-memory")
    assert.is_nil(r.out:find("survived", 1, true), show(r))
  end,
}

-- ---- The simulator's request log ----

local function sim_log(s)
  return assert(assert(http.request { url = s.url .. "/__sim/requests" }):json()).requests
end

local function sim_clear(s)
  assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" })
end

-- Writes that reached the simulator (a search only reads; /oauth/ is the
-- host minting or refreshing its own tokens).
local function sim_writes(s)
  local n = 0
  for _, r in ipairs(sim_log(s)) do
    if r.method ~= "GET" and r.method ~= "HEAD" and not r.path:find("/search$")
       and not r.path:find("^/oauth/") then
      n = n + 1
    end
  end
  return n
end

-- The API requests the simulator saw (without the host's own /oauth/).
local function api_requests(s)
  local out = {}
  for _, r in ipairs(sim_log(s)) do
    if not r.path:find("^/oauth/") then out[#out + 1] = r end
  end
  return out
end

local function paths(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = r.method .. " " .. r.path end
  return table.concat(out, "\n")
end

-- Nothing reached the simulator but GET /contacts/ (the recipe's own good
-- requests), so no attack's path was sent there either.
local function only_good_paths(ctx)
  for _, r in ipairs(api_requests(ctx.sim)) do
    assert.are.equal("/contacts/", r.path, paths(api_requests(ctx.sim)))
  end
end

local function none_sent(ctx)
  local got = api_requests(ctx.sim)
  assert.are.equal(0, #got, "reached the simulator:\n" .. paths(got))
end

local function no_writes(ctx)
  assert.are.equal(0, sim_writes(ctx.sim), paths(api_requests(ctx.sim)))
end

-- The simulator's own first page of contacts (its count changes when a
-- write test fails), asked directly.
local function sim_contacts(ctx, limit)
  local resp = assert(http.request { url = ctx.sim.url .. "/contacts/", headers = ctx.sim.headers(),
    query = { locationId = ctx.sim.location, limit = limit } })
  assert(resp.status == 200, resp.body)
  local ids = {}
  for i, c in ipairs(resp:json().contacts) do ids[i] = c.id end
  return ids
end

-- ---- The checks every row makes ----

local function no_secret(ctx, r)
  for _, secret in ipairs(ctx.secrets()) do
    assert.is_nil(r.out:find(secret, 1, true), "a secret is in stdout:\n" .. show(r))
    assert.is_nil(r.err:find(secret, 1, true), "a secret is in stderr:\n" .. show(r))
  end
end

local function listener_untouched(ctx)
  local got = ctx.listener.requests()
  for _, req in ipairs(got) do
    local text = cjson.encode(req)
    for _, secret in ipairs(ctx.secrets()) do
      assert.is_nil(text:find(secret, 1, true), "a secret reached the listener: " .. text)
    end
    for k in pairs(req.headers or {}) do
      assert.are_not.equal("authorization", k:lower(), "an Authorization header reached the listener: " .. text)
    end
  end
  assert.are.equal(0, #got, "the listener received: " .. cjson.encode(got))
end

-- ---- Contexts: a GHL_TOKEN, or the token store ----

local function env_context()
  local ctx = { mode = "env" }
  ctx.sim = sim.start { "--contacts", "12" }
  ctx.listener = listener.start()
  ctx.env = { GHL_TOKEN = ctx.sim.token, GHL_LOCATION_ID = ctx.sim.location, GHLUA_API_BASE = ctx.sim.url,
              GHLUA_HOME = scratch .. "/home-env", no_proxy = sim.NO_PROXY, NO_PROXY = sim.NO_PROXY }
  function ctx.secrets() return { ctx.sim.token } end
  function ctx.after() end
  function ctx.restore() end
  function ctx.stop() ctx.listener.stop(); ctx.sim.stop() end
  return ctx
end

-- What the store holds that must not change: every token row's secrets and
-- state, every app's secret.
local function store_state(path)
  local store = require "ghl.store"
  local db = assert(store.open(path))
  local out = { tokens = {}, apps = {} }
  for _, t in ipairs(assert(db:find_tokens())) do
    out.tokens[t.app .. " " .. t.resource_id] = { t.access_token, t.refresh_token, t.expires_at, t.status, t.scope }
  end
  for _, a in ipairs(assert(db:list_apps())) do out.apps[a.name] = { a.client_id, a.client_secret, a.scopes } end
  db:close()
  return out
end

local function store_context()
  local ctx = { mode = "store" }
  local o = oauth.start { "--auto-approve", "--contacts", "12" }
  ctx.o = o
  o.add_app(GRANTED)
  local l = o.login()
  assert(l.code == 0, l.err)
  ctx.sim = o.sim
  ctx.listener = listener.start()
  ctx.env = {}
  for k, v in pairs(o.env) do ctx.env[k] = v end
  ctx.home = o.home
  ctx.db = o.home .. "/ghlua.db"
  ctx.parent, ctx.base = o.home:match("^(.*)/([^/]+)$")
  ctx.state = store_state(ctx.db)
  -- a copy to put back after each row, so that one attack that got
  -- through does not fail every row after it
  ctx.backup = mkdir(scratch .. "/store-backup")
  assert(os.execute("chmod 700 " .. q(ctx.backup) .. " && cp -p " .. q(o.home) .. "/ghlua.db* " .. q(ctx.backup)))
  function ctx.restore()
    assert(os.execute("rm -f " .. q(o.home) .. "/ghlua.db* && cp -p " .. q(ctx.backup) .. "/ghlua.db* " .. q(o.home)))
  end
  function ctx.secrets()
    local out = { o.secret, o.sim.token }
    for _, t in pairs(ctx.state.tokens) do
      if t[1] then out[#out + 1] = t[1] end
      if t[2] then out[#out + 1] = t[2] end
    end
    return out
  end
  function ctx.after()
    assert.are.same(ctx.state, store_state(ctx.db), "the token store changed")
    local r = ghlua({ "api", "GET", "/contacts/", "-q", "limit=1" }, ctx.env)
    assert.are.equal(0, r.code, "the store no longer gives a working token:\n" .. show(r))
  end
  function ctx.stop() ctx.listener.stop(); o.stop() end
  return ctx
end

-- Run one row in ctx: set the scene, run, check the outcome, the row's own
-- checks and the ones every row makes.
local function run_row(ctx, row)
  local sc = { dir = scene() }
  if row.scene then row.scene(ctx, sc) end
  local recipe = sc.recipe or (CORPUS .. row[1] .. ".lua")
  local args = { "run", recipe }
  local params = row.params and row.params(ctx, sc) or {}
  for _, kv in ipairs(params) do args[#args + 1] = "--param"; args[#args + 1] = kv end
  for _, a in ipairs(row.args or {}) do args[#args + 1] = a end
  sim_clear(ctx.sim)
  ctx.listener.clear()
  finally(ctx.restore)
  local r = ghlua(args, ctx.env, sc.cwd or sc.dir)
  assert(OUTCOMES[row.expect], "unknown outcome " .. tostring(row.expect))(r, row)
  if row.check then row.check(ctx, r, sc) end
  no_secret(ctx, r)
  listener_untouched(ctx)
  ctx.after()
end

local function port(ctx) return { "port=" .. ctx.listener.port } end

-- ---- 1. The bearer token sent to another host ----

local URL_ROWS = {
  { "url_userinfo_path", params = port, expect = "sandbox", n = 3, check = none_sent },
  { "url_userinfo_request", params = port, expect = "sandbox", n = 4, check = none_sent },
  { "url_absolute", params = port, expect = "sandbox", n = 8, check = none_sent },
  { "url_dotdot", expect = "sandbox", n = 5, check = none_sent },
  { "url_control_chars", params = port, expect = "sandbox", n = 5, check = none_sent },
  { "url_backslash", params = port, expect = "sandbox", n = 4, check = none_sent },
  { "url_encoded", params = port, expect = "sandbox", n = 9, check = none_sent },
  { "url_metatable_request", params = port, expect = "contained", check = only_good_paths },
  { "url_tostring_path", params = port, expect = "contained", check = only_good_paths },
  { "url_batch_each_mutation", params = port, expect = "contained", check = only_good_paths },
  { "url_batch_list_growth", params = port, expect = "contained", check = only_good_paths },
  { "url_placeholder_dotdot", params = port, expect = "contained", check = function(ctx)
      for _, r in ipairs(api_requests(ctx.sim)) do
        assert.is_nil(r.path:find("..", 1, true), "a dot segment reached the simulator: " .. r.path)
      end
    end },
  { "url_client_rewrite", params = port, expect = "contained", check = function(ctx, r)
      only_good_paths(ctx)
      if r.code == 0 then assert.is_false(decoded(r).listener, show(r)) end
    end },
}

-- ---- 2. Objects shared with the host ----

local SHARED_ROWS = {
  { "shared_raw_response_metatable", expect = "ok", check = function(ctx, r)
      assert.are.same(sim_contacts(ctx), decoded(r).ids, show(r))
    end },
  { "shared_error_tostring", expect = "refused", check = function(_, r)
      assert.is_nil(r.err:find("PWNED", 1, true), show(r))
    end },
  { "shared_error_metatable_field", expect = "refused", check = function(_, r)
      assert.is_nil(r.err:find("PWNED", 1, true), show(r))
    end },
  { "shared_error_tostring_raises", expect = "refused", check = function(_, r)
      assert.is_nil(r.err:find("PWNED", 1, true), show(r))
    end },
  { "shared_cjson_number_precision", expect = "ok", check = function(_, r)
      assert.are.same({ pi = 3.25, big = 123456.5 }, decoded(r), show(r))
    end },
  { "shared_cjson_number_precision", args = { "--json" }, expect = "ok", check = function(_, r)
      assert.are.same({ pi = 3.25, big = 123456.5 }, decoded(r), show(r))
    end },
  { "shared_cjson_max_depth", expect = "ok", check = function(_, r)
      local c = {}
      for i = 1, 20 do c[i] = i end
      assert.are.same({ a = { b = { c = c } } }, decoded(r), show(r))
    end },
  { "shared_require_internals", expect = "ok", check = function(_, r)
      local v = decoded(r)
      for _, name in ipairs { "ghl.auth", "ghl.http", "ghl.store", "ghl.sys", "ghl._csv" } do
        assert.are.equal("sandbox", v[name], name .. "\n" .. show(r))
      end
      for _, name in ipairs { "io", "debug", "package", "ghl.server", "ghl.cli.run" } do
        assert.is_nil(tostring(v[name]):find("^loaded"), name .. "\n" .. show(r))
      end
    end },
  { "shared_module_walk", expect = "ok", check = function(_, r)
      assert.are.same({}, decoded(r).found, show(r))
    end },
  { "sandbox_globals", expect = "ok", check = function(_, r)
      for k, v in pairs(decoded(r)) do assert.is_false(v, k .. "\n" .. show(r)) end
    end },
}

-- After a custom-fields cache attack: a trusted run with the store still
-- maps "budget" to the simulator's own field.
local function budget_is_real(ctx)
  local r = ghlua({ "-e", [[
    local ghl = require "ghl"
    local c = ghl.client {}
    local f = ghl.custom_fields.by_key(c, "budget")
    local real
    for _, x in ipairs(c:get("/locations/{locationId}/customFields").customFields) do
      if x.fieldKey == "contact.budget" then real = x.id end
    end
    print(f and f.id, real)
  ]] }, ctx.env)
  assert.are.equal(0, r.code, show(r))
  local got, real = r.out:match("^(%S+)%s+(%S+)\n$")
  assert.is_string(real, show(r))
  assert.are.equal(real, got, "the cache maps budget elsewhere:\n" .. show(r))
end

local CACHE_ROWS = {
  { "shared_custom_fields_cache", expect = "contained", check = budget_is_real },
  { "shared_custom_fields_invalidate", expect = "contained", check = budget_is_real },
}

-- ---- 3. Files ----

local MARK = "MARKER-not-for-the-recipe-7f3a"
local function no_mark(_, r)
  assert.is_nil(r.out:find(MARK, 1, true), "the recipe read the file:\n" .. show(r))
  assert.is_nil(r.err:find(MARK, 1, true), "the recipe read the file:\n" .. show(r))
end

-- file_read_path's answer: a sandbox refusal, no rows.
local function read_refused(ctx, r)
  assert.are.equal(0, r.code, show(r))
  local v = decoded(r)
  assert.are.equal("sandbox", v.verdict, show(r))
  assert.are.same({}, v.rows, show(r))
  no_mark(ctx, r)
end

local function unchanged(path, text)
  return function(_, r)
    assert.are.equal(text, run.slurp(path), path .. " changed:\n" .. show(r))
  end
end

local function not_created(rel)
  return function(_, r, sc)
    assert.is_false(exists(sc.dir .. "/" .. rel), rel .. " was created:\n" .. show(r))
  end
end

local FILE_ROWS = {
  -- reading with ghl.csv.read a path that is not an input_file parameter
  { "file_read_path", desc = "the store by its absolute path", expect = "ok",
    params = function(ctx) return { "path=" .. ctx.db } end, check = read_refused },
  { "file_read_path", desc = "the store by a relative path from its parent", expect = "ok",
    scene = function(ctx, sc) sc.cwd = ctx.parent end,
    params = function(ctx) return { "path=" .. ctx.base .. "/ghlua.db" } end, check = read_refused },
  { "file_read_path", desc = "an ordinary file never declared", expect = "ok",
    scene = function(_, sc) write(sc.dir .. "/plain.csv", "a\n" .. MARK .. "\n") end,
    params = function() return { "path=plain.csv" } end, check = read_refused },
  { "file_read_path", desc = "a file above the working directory", expect = "ok",
    scene = function(_, sc)
      write(sc.dir .. "/plain.csv", "a\n" .. MARK .. "\n")
      sc.cwd = mkdir(sc.dir .. "/sub")
    end,
    params = function() return { "path=../plain.csv" } end, check = read_refused },
  -- an input_file parameter naming what no recipe may read
  { "file_read_input", desc = "input_file = the store", expect = "refused",
    params = function(ctx) return { "input=" .. ctx.db } end },
  { "file_read_input", desc = "input_file = the store through '..'", expect = "refused",
    params = function(ctx) return { "input=" .. ctx.home .. "/../" .. ctx.base .. "/ghlua.db" } end },
  { "file_read_input", desc = "input_file = another file in GHLUA_HOME", expect = "refused", check = no_mark,
    scene = function(ctx) write(ctx.home .. "/notes.csv", "a\n" .. MARK .. "\n") end,
    params = function(ctx) return { "input=" .. ctx.home .. "/notes.csv" } end },
  { "file_read_input", desc = "input_file = a symlink to the store", expect = "refused",
    scene = function(ctx, sc) symlink(ctx.db, sc.dir .. "/in.csv") end,
    params = function() return { "input=in.csv" } end },
  { "file_read_input", desc = "input_file = a symlink to an ordinary file", expect = "refused", check = no_mark,
    scene = function(_, sc)
      write(sc.dir .. "/real.csv", "a\n" .. MARK .. "\n")
      symlink(sc.dir .. "/real.csv", sc.dir .. "/in.csv")
    end,
    params = function() return { "input=in.csv" } end },
  { "file_read_input", desc = "input_file = a dangling symlink", expect = "refused",
    scene = function(_, sc) symlink(sc.dir .. "/nowhere.csv", sc.dir .. "/in.csv") end,
    params = function() return { "input=in.csv" } end },
  { "file_read_input", desc = "input_file in a symlinked directory to GHLUA_HOME", expect = "refused",
    scene = function(ctx, sc) symlink(ctx.home, sc.dir .. "/homelink") end,
    params = function() return { "input=homelink/ghlua.db" } end },
  { "file_read_input", desc = "input_file = .git/config", expect = "refused", check = no_mark,
    scene = function(_, sc) mkdir(sc.dir .. "/.git"); write(sc.dir .. "/.git/config", "a\n" .. MARK .. "\n") end,
    params = function() return { "input=.git/config" } end },
  { "file_read_input", desc = "input_file in a dot-directory", expect = "refused", check = no_mark,
    scene = function(_, sc) mkdir(sc.dir .. "/.secrets"); write(sc.dir .. "/.secrets/keys.csv", "a\n" .. MARK .. "\n") end,
    params = function(_, sc) return { "input=" .. sc.dir .. "/.secrets/keys.csv" } end },
  -- writing with ghl.csv.write a path that is not an output_file parameter
  { "file_write_path", desc = "truncating the store by its absolute path", expect = "sandbox", n = 1,
    params = function(ctx) return { "path=" .. ctx.db } end },
  { "file_write_path", desc = "truncating the store from its parent", expect = "sandbox", n = 1,
    scene = function(ctx, sc) sc.cwd = ctx.parent end,
    params = function(ctx) return { "path=" .. ctx.base .. "/ghlua.db" } end },
  { "file_write_path", desc = "a new file never declared", expect = "sandbox", n = 1,
    params = function() return { "path=new.csv" } end, check = not_created("new.csv") },
  -- an output_file parameter naming what no recipe may write
  { "file_write_output", desc = "output_file = the store, --force", expect = "refused", args = { "--force" },
    params = function(ctx) return { "output=" .. ctx.db } end },
  { "file_write_output", desc = "output_file = .git/config, --force", expect = "refused", args = { "--force" },
    scene = function(_, sc) mkdir(sc.dir .. "/.git"); write(sc.dir .. "/.git/config", MARK) end,
    params = function() return { "output=.git/config" } end,
    check = function(ctx, r, sc) unchanged(sc.dir .. "/.git/config", MARK)(ctx, r) end },
  { "file_write_output", desc = "output_file = a new file in .git", expect = "refused",
    scene = function(_, sc) mkdir(sc.dir .. "/.git/hooks") end,
    params = function() return { "output=.git/hooks/post-checkout" } end,
    check = not_created(".git/hooks/post-checkout") },
  { "file_write_output", desc = "output_file in a dot-directory", expect = "refused",
    scene = function(_, sc) mkdir(sc.dir .. "/.ssh") end,
    params = function(_, sc) return { "output=" .. sc.dir .. "/.ssh/authorized_keys" } end,
    check = not_created(".ssh/authorized_keys") },
  { "file_write_output", desc = "output_file = a dangling symlink", expect = "refused",
    scene = function(_, sc) mkdir(sc.dir .. "/elsewhere"); symlink(sc.dir .. "/elsewhere/victim.csv", sc.dir .. "/out.csv") end,
    params = function() return { "output=out.csv" } end, check = not_created("elsewhere/victim.csv") },
  { "file_write_output", desc = "output_file = a symlink to a file, --force", expect = "refused", args = { "--force" },
    scene = function(_, sc) write(sc.dir .. "/target.csv", MARK); symlink(sc.dir .. "/target.csv", sc.dir .. "/out.csv") end,
    params = function() return { "output=out.csv" } end,
    check = function(ctx, r, sc) unchanged(sc.dir .. "/target.csv", MARK)(ctx, r) end },
  { "file_write_output", desc = "output_file = a symlink to the store, --force", expect = "refused", args = { "--force" },
    scene = function(ctx, sc) symlink(ctx.db, sc.dir .. "/out.csv") end,
    params = function() return { "output=out.csv" } end },
  { "file_write_output", desc = "output_file that exists, without --force", expect = "refused",
    scene = function(_, sc) write(sc.dir .. "/exists.csv", MARK) end,
    params = function() return { "output=exists.csv" } end,
    check = function(ctx, r, sc) unchanged(sc.dir .. "/exists.csv", MARK)(ctx, r) end },
  { "file_write_output", desc = "output_file that exists, with --force (allowed)", expect = "ok", args = { "--force" },
    scene = function(_, sc) write(sc.dir .. "/exists.csv", MARK) end,
    params = function() return { "output=exists.csv" } end,
    check = function(_, r, sc) assert.are.equal("[core]\npwned = true\n", run.slurp(sc.dir .. "/exists.csv"), show(r)) end },
  { "file_write_output_overwrite", desc = "overwrite = true replaces an existing file (allowed)", expect = "ok",
    scene = function(_, sc) write(sc.dir .. "/exists.csv", MARK) end,
    params = function() return { "output=exists.csv" } end,
    check = function(_, r, sc) assert.are.equal("pwned\n", run.slurp(sc.dir .. "/exists.csv"), show(r)) end },
  { "file_write_output_overwrite", desc = "overwrite = true does not open .git/config", expect = "refused",
    scene = function(_, sc) mkdir(sc.dir .. "/.git"); write(sc.dir .. "/.git/config", MARK) end,
    params = function() return { "output=.git/config" } end,
    check = function(ctx, r, sc) unchanged(sc.dir .. "/.git/config", MARK)(ctx, r) end },
  { "file_write_other_than_declared", desc = "writing next to the declared output", expect = "sandbox", n = 3,
    scene = function(_, sc) sc.cwd = mkdir(sc.dir .. "/work") end,
    params = function() return { "output=declared.csv" } end,
    check = function(_, r, sc)
      for _, rel in ipairs { "work/declared.csv.bak", "declared.csv", "work/other.csv", "work/declared.csv" } do
        assert.is_false(exists(sc.dir .. "/" .. rel), rel .. " was created:\n" .. show(r))
      end
    end },
  -- require of siblings that lead out of the recipe's directory
  { "file_require_symlink", desc = "a sibling symlinked out of the tree", expect = "sandbox", n = 1,
    scene = function(_, sc)
      mkdir(sc.dir .. "/outside")
      write(sc.dir .. "/outside/helper.lua", "return 'OUTSIDE-LOADED'")
      sc.recipe = copy_recipe("file_require_symlink", mkdir(sc.dir .. "/recipe"))
      symlink("../outside/helper.lua", sc.dir .. "/recipe/file_require_symlink_helper.lua")
    end,
    check = function(_, r) assert.is_nil(r.out:find("OUTSIDE-LOADED", 1, true), show(r)) end },
  { "file_require_symlink_dir", desc = "a module in a directory symlinked out of the tree", expect = "sandbox", n = 1,
    scene = function(_, sc)
      mkdir(sc.dir .. "/outside")
      write(sc.dir .. "/outside/evil.lua", "return 'OUTSIDE-LOADED'")
      sc.recipe = copy_recipe("file_require_symlink_dir", mkdir(sc.dir .. "/recipe"))
      symlink("../outside", sc.dir .. "/recipe/lib")
    end,
    check = function(_, r) assert.is_nil(r.out:find("OUTSIDE-LOADED", 1, true), show(r)) end },
}

-- ---- 4. writes = false, and the manifest's scopes ----

local function with_search(ctx)
  no_writes(ctx)
  local searched = 0
  for _, r in ipairs(api_requests(ctx.sim)) do
    if r.method == "POST" and r.path:find("/contacts/search$") then searched = searched + 1 end
  end
  assert.is_true(searched >= 1, "the search (a read) did not go through:\n" .. paths(api_requests(ctx.sim)))
end

local WRITE_ROWS = {
  { "writes_client_post", expect = "refused", check = no_writes },
  { "writes_client_delete", expect = "refused", check = no_writes },
  { "writes_client_put", expect = "refused", check = no_writes },
  { "writes_request_methods", expect = "sandbox", n = 9, check = no_writes },
  { "writes_contacts_create", expect = "refused", check = no_writes },
  { "writes_contacts_delete", expect = "refused", check = with_search },
  { "writes_resource_methods", expect = "sandbox", n = 5, check = no_writes },
  { "writes_batch", expect = "contained", check = no_writes },
  { "writes_caught_retry", expect = "sandbox", n = 1, check = no_writes },
  { "scope_undeclared_route", expect = "sandbox", n = 4, check = function(ctx)
      for _, r in ipairs(api_requests(ctx.sim)) do
        assert.is_nil(r.path:find("^/users") or r.path:find("^/locations"), "sent: " .. r.path)
      end
    end },
  { "scope_none_declared", expect = "refused", check = none_sent },
  { "scope_write_declared_readonly", args = { "--yes" }, expect = "sandbox", n = 1, check = no_writes },
  { "control_write_allowed", desc = "positive control: a declared write goes through", args = { "--yes" },
    expect = "ok", check = function(ctx, r)
      assert.are.equal("created\n", r.out, show(r))
      assert.are.equal(1, sim_writes(ctx.sim))
    end },
}

-- ---- 5. Limits ----

local LIMIT_ROWS = {
  { "limit_busy_loop", args = { "--timeout", "1" }, expect = "timeout" },
  { "limit_pcall_loop", args = { "--timeout", "1" }, expect = "timeout" },
  { "limit_coroutine_loop", args = { "--timeout", "1" }, expect = "timeout" },
  { "limit_c_pattern", args = { "--timeout", "1" }, expect = "timeout" },
  { "limit_table_growth", args = { "--max-memory", "64M" }, expect = "memory" },
  { "limit_string_doubling", args = { "--max-memory", "64M" }, expect = "memory" },
  { "limit_pcall_memory", args = { "--max-memory", "64M" }, expect = "memory" },
  { "limit_json_encode", args = { "--max-memory", "64M" }, expect = "memory" },
}

-- ---- 6. Printing the client ----

local PRINT_ROWS = {
  { "print_tostring_client", expect = "ok" },
  { "print_inspect_client", expect = "ok" },
  { "print_error_client", expect = "refused" },
  { "print_return_client", expect = "contained" },
  { "print_return_client", args = { "--json" }, expect = "contained" },
  { "print_pairs_client", expect = "ok" },
  { "print_error_fields", expect = "ok", check = function(_, r)
      assert.is_nil(r.out:find("Bearer ", 1, true), show(r))
    end },
  { "print_tostring_client", desc = "with --trust", args = { "--trust" }, expect = "ok" },
  { "print_inspect_client", desc = "with --trust", args = { "--trust" }, expect = "ok" },
  { "print_return_client", desc = "with --trust", args = { "--trust" }, expect = "contained" },
}

-- ---- Positive controls ----

local function contacts_listed(ctx, r)
  local v = decoded(r)
  local ids = sim_contacts(ctx, 100)
  assert.are.same({ #ids, #ids, ids[1], 42, true, 42, "number" },
    { v.count, v.searched, v.first, v.helper, v.try, v.load, v.time }, show(r))
  local gets = 0
  for _, q_ in ipairs(api_requests(ctx.sim)) do
    if q_.method == "GET" and q_.path == "/contacts/" then gets = gets + 1 end
  end
  assert.is_true(gets >= 1, paths(api_requests(ctx.sim)))
end

local CONTROL_ROWS = {
  { "control_get_contacts", desc = "a benign recipe lists contacts", expect = "ok", check = contacts_listed },
  { "control_get_contacts", desc = "... under --max-memory 64M --timeout 60", expect = "ok", check = contacts_listed,
    args = { "--max-memory", "64M", "--timeout", "60" } },
  { "control_files", desc = "a benign recipe reads its input_file and writes its output_file", expect = "ok",
    scene = function(_, sc)
      write(sc.dir .. "/in.csv", "name,n\nada,1\nbob,2\n")
      write(sc.dir .. "/old.csv", "name,n\ncy,3\n")
    end,
    params = function() return { "input=in.csv", "old=old.csv", "output=out.csv" } end,
    check = function(_, r, sc)
      local v = decoded(r)
      assert.are.same({ 3, "2", 2 }, { v.written, v.parsed, v.text_rows }, show(r))
      assert.are.equal("name,n\nADA,2\nBOB,4\ncy,3\n", run.slurp(sc.dir .. "/out.csv"))
    end },
}

-- ---- The specs ----

local function label(row)
  local parts = { row[1] }
  if row.desc then parts[#parts + 1] = row.desc end
  if row.args and not row.desc then parts[#parts + 1] = table.concat(row.args, " ") end
  return table.concat(parts, ": ")
end

local function rows_in(ctx_fn, groups)
  local ctx
  setup(function() ctx = ctx_fn() end)
  teardown(function() if ctx then ctx.stop() end end)
  for _, g in ipairs(groups) do
    describe(g[1], function()
      for _, row in ipairs(g[2]) do
        it(label(row), function() run_row(ctx, row) end)
      end
    end)
  end
end

describe("hostile recipes with the token store", function()
  rows_in(store_context, {
    { "the bearer token to another host", URL_ROWS },
    { "objects shared with the host", SHARED_ROWS },
    { "the custom-fields cache", CACHE_ROWS },
    { "files", FILE_ROWS },
    { "writes = false and scopes", WRITE_ROWS },
    { "printing the client", PRINT_ROWS },
    { "positive controls", CONTROL_ROWS },
  })
end)

describe("hostile recipes with GHL_TOKEN", function()
  rows_in(env_context, {
    { "the bearer token to another host", URL_ROWS },
    { "objects shared with the host", SHARED_ROWS },
    { "writes = false and scopes", WRITE_ROWS },
    { "limits", LIMIT_ROWS },
    { "printing the client", PRINT_ROWS },
    { "positive controls", { CONTROL_ROWS[1], CONTROL_ROWS[2] } },
  })
end)

describe("a trusted client", function()
  local TRUSTED = [[
    local ghl = require "ghl"
    local c = os.getenv("GHL_TOKEN") and ghl.client { token = os.getenv("GHL_TOKEN") } or ghl.client {}
    print(ghl.inspect(c, { depth = 20 }))
    print(tostring(c))
    c:get("/contacts/", { limit = 1 })
    print(ghl.inspect(c, { depth = 20 }))
    print(ghl.inspect(c.last, { depth = 20 }))
    print(tostring(c.static_token), tostring(c.last and c.last.token))
  ]]

  it("shows no token in ghl.inspect or tostring (GHL_TOKEN)", function()
    local ctx = env_context()
    finally(ctx.stop)
    local r = ghlua({ "-e", TRUSTED }, ctx.env)
    assert.are.equal(0, r.code, show(r))
    no_secret(ctx, r)
  end)

  it("shows no token in ghl.inspect or tostring (the token store)", function()
    local ctx = store_context()
    finally(ctx.stop)
    local r = ghlua({ "-e", TRUSTED }, ctx.env)
    assert.are.equal(0, r.code, show(r))
    no_secret(ctx, r)
    ctx.after()
  end)
end)

describe("cjson settings across --all-locations", function()
  it("do not reach the host: every location runs and the report prints right", function()
    local a = agency.start(2, "locations.readonly")
    local l = listener.start()
    finally(function() l.stop(); a.stop() end)
    local r = ghlua({ "run", CORPUS .. "shared_cjson_all_locations.lua", "--all-locations", "--concurrency", "1",
                      "--json" }, a.env)
    assert.are.equal(0, r.code, show(r))
    local rep = decoded(r)
    assert.are.same({ 3, 3, 0 }, { rep.total, rep.ok, rep.failed }, show(r))
    for _, e in ipairs(rep.locations) do
      assert.are.same({ ok = true, pi = 3.25 }, e.result, show(r))
    end
    r = ghlua({ "run", CORPUS .. "shared_cjson_all_locations.lua", "--all-locations", "--concurrency", "1" }, a.env)
    assert.are.equal(0, r.code, show(r))
    assert.matches("3 locations in [%d.]+s: 3 ok, 0 failed", r.out)
  end)
end)
