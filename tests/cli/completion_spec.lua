-- `ghlua completion bash|zsh|fish`: the scripts, loaded in the real shells
-- and driven the way each shell drives a completion (bash: COMP_LINE,
-- COMP_POINT and COMP_WORDS through the function `complete -p` names; zsh:
-- words and CURRENT with compadd and _files recorded; fish: complete -C).
-- The candidates come from the command table (walked here, so a new
-- command, subcommand or flag is covered without a new test), the scope
-- catalogue, the operations table and the token store. Completing never
-- prints a secret, never sends a request and never creates a store.
local run = require "support.run"
local listener = require "support.listener"
local cli = require "ghl.cli"
local args = require "ghl.cli.args"
local sys = require "ghl.sys"

local BUILD = os.getenv("GHLUA_BUILD")
local SECRET = "client-secret-do-not-print-1234"
local PIT = "pit-do-not-print-abcdef-5678"

local tmpdir = require("support.fixture").tmpdir   -- a new 0700 directory

local function need(shell)
  if os.execute("command -v " .. shell .. " >/dev/null 2>&1") ~= true then
    error(shell .. " is not installed (sh .ci/deps test installs it)", 2)
  end
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  table.sort(t)
  return t
end

-- Every visible node with its path.
local function nodes()
  local out = {}
  cli.walk(function(node, path)
    for _, p in ipairs(path) do if p:sub(1, 2) == "__" then return end end
    if not node.hidden then out[#out + 1] = { path = path, node = node } end
  end)
  return out
end

-- A home with a token store holding an app (with its secret) and a PIT,
-- and an empty working directory with a few files.
local home, cwd, env
setup(function()
  home, cwd = tmpdir(), tmpdir()
  env = { GHLUA_HOME = home, PATH = BUILD .. ":" .. os.getenv("PATH") }
  local r = run.ghlua({ "app", "add", "myapp", "--client-id", "68a2fd84fab6670f45220ebf-megyp358",
    "--redirect-uri", "http://localhost:8080/callback" }, { env = { GHLUA_HOME = home, GHL_CLIENT_SECRET = SECRET } })
  assert(r.code == 0, r.err)
  r = run.ghlua({ "auth", "pit", "add", "mypit", "--location", "LocAbc123", "--offline" },
    { env = { GHLUA_HOME = home, GHL_PIT = PIT } })
  assert(r.code == 0, r.err)
  assert(sys.mkdir(cwd .. "/recipes", tonumber("700", 8)))
  write(cwd .. "/recipes/tag.lua", "")
  write(cwd .. "/recipes/notes.txt", "")
  write(cwd .. "/key.pem", "")
end)
teardown(function()
  run.sh("rm -rf " .. run.quote(home) .. " " .. run.quote(cwd))
end)

local function in_cwd(cmd, opts)
  opts = opts or {}
  local e = {}
  for k, v in pairs(env) do e[k] = v end
  for k, v in pairs(opts.env or {}) do e[k] = v end
  return run.sh("sh -c " .. run.quote("cd " .. run.quote(cwd) .. " && " .. cmd), { env = e, stdin = opts.stdin })
end

-- ---- bash ----

-- Complete `line` (the cursor at its end) in bash with the script loaded;
-- COMP_WORDS is split as bash splits it (COMP_WORDBREAKS). Returns the
-- sorted COMPREPLY and the compopt options the function set.
local BASH_DRIVER = [=[
source <(ghlua completion bash) || exit 3
spec=$(complete -p ghlua) || exit 4
fn=${spec#*-F }; fn=${fn%% *}
compopt() { printf '%s\n' "$*" >> "$OPTS"; }
COMP_LINE=$LINE; COMP_POINT=${#COMP_LINE}
COMP_WORDS=(); w=""
for (( i = 0; i < ${#LINE}; i++ )); do
  c=${LINE:i:1}
  if [[ $c == " " ]]; then [[ -n $w ]] && COMP_WORDS+=("$w"); w=""
  elif [[ $COMP_WORDBREAKS == *"$c"* ]]; then [[ -n $w ]] && COMP_WORDS+=("$w"); COMP_WORDS+=("$c"); w=""
  else w+=$c; fi
done
COMP_WORDS+=("$w")
[[ -z $w && ${COMP_WORDS[-2]} == [=:] ]] && unset 'COMP_WORDS[-1]'
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMPREPLY=()
"$fn" ghlua "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
]=]

local function bash(line)
  local opts = os.tmpname()
  local script = os.tmpname()
  write(script, BASH_DRIVER)
  local r = in_cwd("bash " .. run.quote(script), { env = { LINE = line, OPTS = opts } })
  os.remove(script)
  assert(r.code == 0, line .. ": " .. r.err)
  local o = run.slurp(opts)
  os.remove(opts)
  return lines(r.out), o
end

describe("ghlua completion bash", function()
  it("is registered with complete -F for ghlua", function()
    local r = in_cwd("bash -c 'source <(ghlua completion bash) && complete -p ghlua'")
    assert.are.same({ 0, "complete -F _ghlua ghlua\n" }, { r.code, r.out })
    r = run.ghlua { "completion", "tcsh" }
    assert.are.equal(2, r.code)
    assert.matches("give bash, zsh or fish", r.err)
  end)

  it("completes commands and script files in first place", function()
    assert.are.same({ "api", "app" }, (bash("ghlua ap")))
    assert.are.same({ "recipes" }, (bash("ghlua rec")))
    local cands = bash("ghlua ")
    for _, c in ipairs(cli.children(cli.root)) do
      assert.are.equal(not c.hidden, require("pl.tablex").find(cands, c.name) ~= nil, c.name)
    end
  end)

  it("offers every subcommand of every command in the table", function()
    for _, n in ipairs(nodes()) do
      if n.node.subcommands then
        local want = {}
        for _, c in ipairs(cli.children(n.node)) do if not c.hidden then want[#want + 1] = c.name end end
        table.sort(want)
        assert.are.same(want, (bash("ghlua " .. table.concat(n.path, " ") .. " ")), table.concat(n.path, " "))
      end
    end
    assert.are.same({ "remove" }, (bash("ghlua app rem")))
  end)

  it("offers every flag of every command in the table, and --help", function()
    for _, n in ipairs(nodes()) do
      if not n.node.subcommands then
        local cands = bash("ghlua " .. table.concat(n.path, " ") .. " --")
        local set = {}
        for _, c in ipairs(cands) do set[c] = true end
        for _, d in ipairs(args.list(n.node.flags)) do
          if d.long then assert.is_true(set["--" .. d.name], table.concat(n.path, " ") .. " --" .. d.name) end
        end
        assert.is_true(set["--help"], table.concat(n.path, " ") .. " --help")
      end
    end
    assert.are.same({ "--paginate" }, (bash("ghlua api GET /contacts/ --pag")))
    local short = bash("ghlua api -")
    for _, f in ipairs { "-q", "-f", "-d", "-v", "--query" } do
      assert.is_truthy(require("pl.tablex").find(short, f), f)
    end
    -- a flag given once is not offered again; a repeatable one is
    assert.are.same({}, (bash("ghlua auth status --json --js")))
    assert.are.same({ "--query" }, (bash("ghlua api GET /x --query a=1 --que")))
  end)

  it("completes scope names and groups, also after a comma and after --scopes=", function()
    assert.are.same({ "contacts.readonly", "contacts.write" }, (bash("ghlua app add x --scopes contacts.")))
    assert.are.same({ "custom-fields" }, (bash("ghlua auth login --scopes custom-f")))
    assert.are.same({ "contacts.readonly,calendars/events.readonly", "contacts.readonly,calendars/events.write" },
      (bash("ghlua auth url --scopes contacts.readonly,calendars/ev")))
    -- bash replaces what follows the '=' only
    assert.are.same({ "custom-fields" }, (bash("ghlua auth login --scopes=custom-f")))
    local cands = bash("ghlua scopes socialp")
    assert.are.equal("socialplanner", cands[1])
    assert.are.equal("socialplanner/post.readonly", cands[10])
  end)

  it("completes app, PIT and location names from the token store", function()
    assert.are.same({ "myapp" }, (bash("ghlua auth login --app ")))
    assert.are.same({ "myapp" }, (bash("ghlua api GET /x --app=m")))
    assert.are.same({ "myapp" }, (bash("ghlua app remove ")))
    assert.are.same({ "mypit" }, (bash("ghlua auth pit remove ")))
    assert.are.same({ "LocAbc123" }, (bash("ghlua run x.lua --location Loc")))
  end)

  it("completes api methods and paths from the operations table, a segment at a time", function()
    assert.are.same({ "DELETE", "GET", "PATCH", "POST", "PUT" }, (bash("ghlua api ")))
    assert.are.same({ "patch", "post", "put" }, (bash("ghlua api p")))
    assert.are.same({ "PATCH", "POST", "PUT" }, (bash("ghlua api P")))
    local cands, opts = bash("ghlua api GET /contacts/{contactId}/no")
    assert.are.same({ "/contacts/{contactId}/notes", "/contacts/{contactId}/notes/" }, cands)
    assert.are.equal("", opts)
    cands, opts = bash("ghlua api get /calendars/events/appointme")
    assert.are.same({ "/calendars/events/appointments/" }, cands)
    assert.matches("%-o nospace", opts)
    cands, opts = bash("ghlua api DELETE /contacts/{contactId}/tags")
    assert.are.same({ "/contacts/{contactId}/tags" }, cands)
    assert.are.equal("", opts)
    cands, opts = bash("ghlua api GET /opportunities/sea")
    assert.are.same({ "/opportunities/search" }, cands)
    -- a segment with more under it: no space after it
    cands, opts = bash("ghlua api POST /contacts/{contactId}/no")
    assert.are.same({ "/contacts/{contactId}/notes" }, cands)
    cands, opts = bash("ghlua api GET /conversations/mess")
    assert.are.same({ "/conversations/messages/" }, cands)
    assert.matches("%-o nospace", opts)
  end)

  it("completes files where a command takes one: recipes, keys, ready files", function()
    local cands, opts = bash("ghlua run recipes/")
    assert.are.same({ "recipes/tag.lua" }, cands)
    assert.matches("%-o filenames", opts)
    assert.are.same({ "key.pem" }, (bash("ghlua webhook serve --public-key k")))
    assert.are.same({ "Company", "Location" }, (bash("ghlua app add x --user-type ")))
    assert.are.same({ "bash", "fish", "zsh" }, (bash("ghlua completion ")))
  end)
end)

-- ---- zsh and fish ----

describe("ghlua completion zsh", function()
  local ZSH_DRIVER = [=[
compdef() { print -r -- "compdef $*" }
compadd() {
  local nospace=""
  while [[ $1 == -* && $1 != -- ]]; do
    case $1 in -S) [[ -z $2 ]] && nospace=" nospace"; shift 2;; -d) shift 2;; *) shift;; esac
  done
  [[ $1 == -- ]] && shift
  local w; for w in "$@"; do print -r -- "$w$nospace"; done
}
_files() { print -r -- "_files $*" }
source <(ghlua completion zsh) || exit 3
words=(${(z)LINE}); [[ $LINE == *" " ]] && words+=("")
CURRENT=${#words}
_ghlua
]=]

  local function zsh(line)
    local script = os.tmpname()
    write(script, ZSH_DRIVER)
    local r = in_cwd("zsh -f " .. run.quote(script), { env = { LINE = line } })
    os.remove(script)
    assert(r.code == 0, line .. ": " .. r.err .. r.out)
    return lines(r.out)
  end

  it("is valid zsh that registers _ghlua with compdef", function()
    need("zsh")
    local r = in_cwd("ghlua completion zsh > _ghlua && zsh -n _ghlua && rm _ghlua")
    assert.are.same({ 0, "" }, { r.code, r.err })
    assert.are.same({ "compdef _ghlua ghlua", "decrypt", "encrypt" }, zsh("ghlua sso "))
  end)

  it("completes commands, app names, paths (no space after a segment) and files", function()
    need("zsh")
    assert.are.same({ "_files ", "api", "app", "compdef _ghlua ghlua" }, zsh("ghlua ap"))
    assert.are.same({ "compdef _ghlua ghlua", "myapp" }, zsh("ghlua auth login --app "))
    assert.are.same({ "--app=myapp", "compdef _ghlua ghlua" }, zsh("ghlua auth login --app="))
    assert.are.same({ "/conversations/messages/ nospace", "compdef _ghlua ghlua" }, zsh("ghlua api GET /conversations/mess"))
    assert.are.same({ "_files -g *.lua", "compdef _ghlua ghlua" }, zsh("ghlua run rec"))
  end)
end)

describe("ghlua completion fish", function()
  local function fish(line)
    local r = in_cwd("fish --no-config -c " .. run.quote("ghlua completion fish | source; complete -C " .. run.quote(line)))
    assert(r.code == 0, line .. ": " .. r.err)
    return lines(r.out)
  end

  it("is valid fish", function()
    need("fish")
    local r = in_cwd("ghlua completion fish > g.fish && fish --no-config -n g.fish && rm g.fish")
    assert.are.same({ 0, "" }, { r.code, r.err })
  end)

  it("completes commands with their summaries, subcommands, app names, scopes, paths and files", function()
    need("fish")
    local cands = fish("ghlua ap")
    assert.are.equal(2, #cands)
    assert.matches("^api\tsend one API request", cands[1])
    assert.matches("^app\tstore OAuth apps", cands[2])
    assert.are.same({ "remove\tforget an app and every token issued to it" }, fish("ghlua app rem"))
    assert.matches("^myapp", fish("ghlua auth login --app ")[1])
    assert.matches("^custom%-fields", fish("ghlua app add x --scopes custom-f")[1])
    assert.are.same({ "/contacts/{contactId}/notes\tGet All Notes", "/contacts/{contactId}/notes/" },
      fish("ghlua api GET /contacts/{contactId}/no"))
    assert.are.same({ "recipes/tag.lua" }, fish("ghlua run recipes/"))
  end)
end)

-- ---- What completing may not do ----

describe("ghlua __complete", function()
  -- Every value position the table declares, with an empty current word.
  local function positions()
    local out = { { "" }, { "api", "GET", "" }, { "api", "GET", "/" } }
    for _, n in ipairs(nodes()) do
      for _, d in ipairs(args.list(n.node.flags)) do
        if d.kind ~= "flag" and d.long then
          local w = table.move(n.path, 1, #n.path, 1, {})
          w[#w + 1] = "--" .. d.name
          w[#w + 1] = ""
          out[#out + 1] = w
        end
      end
      for i, a in ipairs(n.node.arguments or {}) do
        if a.complete then
          local w = table.move(n.path, 1, #n.path, 1, {})
          for _ = 1, i - 1 do w[#w + 1] = "GET" end
          w[#w + 1] = ""
          out[#out + 1] = w
        end
      end
    end
    return out
  end

  it("prints no secret, sends no request and leaves no trace in any position", function()
    local l = listener.start()
    finally(l.stop)
    local e = { GHLUA_API_BASE = l.url, GHLUA_MARKETPLACE_BASE = l.url, http_proxy = l.url, https_proxy = l.url,
      HTTPS_PROXY = l.url, no_proxy = "", NO_PROXY = "", GHL_TOKEN = PIT, GHL_CLIENT_SECRET = SECRET }
    local before = run.sh("ls -lA --time-style=full-iso " .. run.quote(home)).out
    local n = 0
    for _, w in ipairs(positions()) do
      local parts = { "ghlua", "__complete" }
      for i, a in ipairs(w) do parts[i + 2] = run.quote(a) end
      local r = in_cwd(table.concat(parts, " "), { env = e })
      assert.are.same({ 0, "" }, { r.code, r.err }, table.concat(w, " "))
      assert.matches("\n?:[^\n]*\n$", r.out)
      assert.is_nil(r.out:find(SECRET, 1, true), table.concat(w, " "))
      assert.is_nil(r.out:find(PIT, 1, true), table.concat(w, " "))
      assert.is_nil(r.out:find(PIT:sub(-4), 1, true), table.concat(w, " "))
      n = n + 1
    end
    assert.is_true(n > 20)
    assert.are.same({}, l.requests())
    assert.are.equal(before, run.sh("ls -lA --time-style=full-iso " .. run.quote(home)).out)
  end)

  it("never creates a token store, and completes nothing from one it cannot read", function()
    local empty = tmpdir()
    local r = in_cwd("ghlua __complete auth login --app ''", { env = { GHLUA_HOME = empty } })
    assert.are.same({ 0, ":\n", "" }, { r.code, r.out, r.err })
    assert.are.equal("", run.sh("ls -A " .. run.quote(empty)).out)
    write(empty .. "/ghlua.db", "not a database")
    run.sh("chmod 600 " .. run.quote(empty .. "/ghlua.db"))
    r = in_cwd("ghlua __complete auth login --app ''", { env = { GHLUA_HOME = empty } })
    assert.are.same({ 0, ":\n", "" }, { r.code, r.out, r.err })
    assert.are.equal("not a database", run.slurp(empty .. "/ghlua.db"))
    run.sh("rm -rf " .. run.quote(empty))
  end)

  it("takes --help and -v as words to complete, not as options", function()
    local r = in_cwd("ghlua __complete api --hel")
    assert.are.same({ 0, "--help\tshow its help\n:\n" }, { r.code, r.out })
    r = in_cwd("ghlua __complete api -v GET /opportunities/sea")
    assert.are.same({ 0, "/opportunities/search\tSearch Opportunity\n:\n", "" }, { r.code, r.out, r.err })
  end)
end)
