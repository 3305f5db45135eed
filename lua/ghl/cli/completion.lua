-- `ghlua completion bash|zsh|fish`: print a shell completion script, and
-- the engine behind it. The scripts are thin: on TAB they run the ghlua
-- being completed as `ghlua __complete WORD... CURRENT` and show what it
-- prints, so the candidates always come from the installed binary's
-- command table (ghl.cli): commands, subcommands, flags, fixed values, and
-- at completion time scope names (ghl.scopes), API methods and paths
-- (ghl.api.ops), and the app, PIT and location names of the token store.
-- The store is read only when its file exists (completing never creates
-- one), and nothing else is touched: no network, no secret (only names and
-- ids are printed). `__complete` prints one candidate a line, as
-- "WORD<TAB>DESCRIPTION" or "WORD", then a directive line ":[files]
-- [ext=EXT]" (files: add file names; ext: only those ending in .EXT, and
-- directories). A candidate ending in '/', '=' or ',' wants no space after
-- it. Every failure completes nothing: errors are never printed there.
local args = require "ghl.cli.args"

local M = {}

M.summary = "print a shell completion script (bash, zsh or fish)"
M.usage = "ghlua completion bash|zsh|fish"
M.help = [[
Print a script that completes ghlua's commands, subcommands and flags, and
their values: scope names and groups, the app, PIT and location names of
the token store, and for 'ghlua api' the methods and paths of the
operations table. The script asks the ghlua it completes for candidates,
so they always match that binary. To load it:

  bash  in ~/.bashrc:  source <(ghlua completion bash)
        or once:       ghlua completion bash > ~/.local/share/bash-completion/completions/ghlua
  zsh   in ~/.zshrc, after compinit:  source <(ghlua completion zsh)
        or once: ghlua completion zsh > "${fpath[1]}/_ghlua"
  fish  once: ghlua completion fish > ~/.config/fish/completions/ghlua.fish

'make install' installs all three where the shells look for them.
]]
M.flags = {}
M.arguments = { { "SHELL", complete = { "bash", "zsh", "fish" } } }

-- ---- Candidates ----

local function sane(s)
  return type(s) == "string" and s ~= "" and not s:find("[%c]")
end

-- The token store when its file exists (never created here), or nil.
local function open_store()
  local path = require("ghl.config").store_path()
  if not path or not require("ghl.sys").stat(path) then return nil end
  local ok, db = pcall(require("ghl.auth").store)
  return ok and db and (db.raw or db) or nil
end

local function store_rows(method, arg)
  local db = open_store()
  if not db then return {} end
  local ok, rows = pcall(db[method], db, arg)
  return ok and type(rows) == "table" and rows or {}
end

local VALUES = {}

VALUES.app = function()
  local out = {}
  for _, a in ipairs(store_rows("list_apps")) do
    if sane(a.name) then out[#out + 1] = { a.name, sane(a.redirect_uri) and a.redirect_uri or nil } end
  end
  return out
end

VALUES.pit = function()
  local out = {}
  for _, r in ipairs(store_rows("find_tokens", { kind = "pit" })) do
    local name = type(r.app) == "string" and r.app:match("^pit:(.+)$")
    if sane(name) then out[#out + 1] = { name, r.resource_type .. " " .. tostring(r.resource_id) } end
  end
  return out
end

-- Location or company ids: those of stored tokens, and for locations also
-- those 'ghlua auth locations' remembered, with their names.
local function resources(kind)
  local rows, seen, out = store_rows("find_tokens", {}), {}, {}
  local names = {}
  if kind == "Location" and #rows > 0 then
    names = require("ghl.locations").names()
  end
  local function add(id, desc)
    if sane(id) and not seen[id] then
      seen[id] = true
      out[#out + 1] = { id, sane(desc) and desc or nil }
    end
  end
  for _, r in ipairs(rows) do
    if r.resource_type == kind then add(r.resource_id, names[r.resource_id] or ("app " .. tostring(r.app))) end
    if kind == "Company" then add(r.company_id) end
  end
  local ids = {}
  for id in pairs(names) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do add(id, names[id]) end
  return out
end
VALUES.location = function() return resources("Location") end
VALUES.company = function() return resources("Company") end

-- Scope names and groups; the word may be a comma-separated list, whose
-- last item is completed.
VALUES.scope = function(cur)
  local scopes = require "ghl.scopes"
  local head = cur:match("^(.*,)") or ""
  local out = {}
  for _, name in ipairs(scopes.names()) do out[#out + 1] = { head .. name, "group" } end
  for _, r in ipairs(scopes.rows()) do
    if r.requestable then out[#out + 1] = { head .. r.scope, r.area } end
  end
  return out
end

VALUES.method = function(cur)
  local out = {}
  for _, m in ipairs { "GET", "POST", "PUT", "PATCH", "DELETE" } do
    out[#out + 1] = { cur:match("^%l") and m:lower() or m }
  end
  return out
end

-- API paths of the method given before, one segment at a time: the paths
-- under the next '/' (ending in '/', so no space follows), or whole ones.
VALUES.path = function(cur, ctx)
  local ops = require "ghl.api.ops"
  local method = (ctx.positionals[#ctx.positionals] or "GET"):upper()
  local prefix = cur == "" and "/" or cur
  local seen, out = {}, {}
  for _, t in ipairs(ops.complete(prefix, method)) do
    local j = t:find("/", #prefix + 1, true)
    local cand = (j and j < #t) and t:sub(1, j) or t
    if not seen[cand] then
      seen[cand] = true
      local op = cand == t and ops.op(method, t)
      out[#out + 1] = { cand, op and sane(op.summary) and op.summary or nil }
    end
  end
  return out
end

-- A command path, for `ghlua help`: the subcommands of the words before.
VALUES.command = function(_, ctx)
  local cli = require "ghl.cli.commands"
  local node = cli.find(ctx.positionals)
  local out = {}
  for _, r in ipairs(node and require("ghl.cli.help").command_rows(node) or {}) do out[#out + 1] = { r[1], r[2] } end
  return out
end

VALUES.file = function() return {}, { files = true } end
VALUES.lua = function() return {}, { files = true, ext = "lua" } end

-- Candidates for a value that completes as `how` (a VALUES name or a
-- list of words), starting with cur.
local function values(how, cur, ctx)
  local list, dir
  if type(how) == "table" then
    list = {}
    for i, w in ipairs(how) do list[i] = { w } end
  elseif VALUES[how] then
    list, dir = VALUES[how](cur, ctx)
  else
    list = {}
  end
  local out = {}
  for _, c in ipairs(list) do
    if c[1]:sub(1, #cur) == cur then out[#out + 1] = c end
  end
  return out, dir or {}
end

-- The flags a node takes on the command line: its own, then the global
-- ones and --help unless it declares them.
local function flag_spec(node, root)
  local cli = require "ghl.cli.commands"
  local spec = {}
  for k, v in pairs(node.flags or {}) do spec[k] = v end
  if root then return spec end
  for _, d in ipairs(args.list(cli.root.flags)) do
    if d.global and not args.lookup(spec, args.display(d)) then spec[d.name] = cli.root.flags[d.name] end
  end
  if not spec.help then spec.help = { "flag", short = not args.lookup(spec, "-h") and "h" or nil, desc = "show its help" } end
  return spec
end

local function flag_candidates(spec, cur, seen)
  local out = {}
  for _, d in ipairs(args.list(spec)) do
    if not seen[d.name] or d.kind == "list" then
      local forms = {}
      if d.long then forms[#forms + 1] = "--" .. d.name end
      if d.short and (cur == "-" or not d.long) then forms[#forms + 1] = "-" .. d.short end
      for _, f in ipairs(forms) do
        if f:sub(1, #cur) == cur then out[#out + 1] = { f, d.desc } end
      end
    end
  end
  return out
end

-- complete(words) -> candidates {{word, desc}, ...}, directives {files=,
-- ext=}: what may replace the last word of `ghlua WORDS...`.
function M.complete(words)
  local cli = require "ghl.cli.commands"
  local cur = words[#words] or ""
  local node, root = cli.root, true
  local ctx = { positionals = {} }
  local seen, pending, dashdash, script, has_e = {}, nil, false, false, false
  local spec = flag_spec(node, true)
  for i = 1, #words - 1 do
    local w = words[i]
    if pending then
      pending = nil
    elseif not dashdash and w == "--" then
      dashdash = true
    elseif not dashdash and not script and w:sub(1, 1) == "-" and w ~= "-" then
      local d, value = args.lookup(spec, w)
      if d then
        seen[d.name] = true
        if root and (d.name == "e") then has_e = true end
        if d.kind ~= "flag" and value == nil and (d.optional == nil or words[i + 1]:sub(1, 1) ~= "-") then pending = d end
      end
    elseif script then
      ctx.positionals[#ctx.positionals + 1] = w
    elseif node.subcommands and #ctx.positionals == 0 and not (root and (has_e or dashdash)) then
      local c = cli.child(node, w)
      if not c then
        if not root then return {}, {} end
        script = true          -- a script and its arguments
      else
        node, root, seen = c, false, {}
        spec = flag_spec(node, false)
      end
    else
      ctx.positionals[#ctx.positionals + 1] = w
    end
  end
  if script or (root and (has_e or dashdash) and not pending) then return {}, { files = true } end
  if pending then return values(pending.complete, cur, ctx) end
  if not dashdash and cur:match("^%-%-[^=]+=") then
    local name, value = cur:match("^%-%-([^=]+)=(.*)$")
    local d = args.lookup(spec, "--" .. name)
    if not d or d.kind == "flag" then return {}, {} end
    local list, dir = values(d.complete, value, ctx)
    for _, c in ipairs(list) do c[1] = "--" .. name .. "=" .. c[1] end
    return list, dir
  end
  if not dashdash and cur:sub(1, 1) == "-" then return flag_candidates(spec, cur, seen), {} end
  if node.subcommands and #ctx.positionals == 0 then
    local out = {}
    for _, r in ipairs(require("ghl.cli.help").command_rows(node)) do
      if r[1]:sub(1, #cur) == cur then out[#out + 1] = { r[1], r[2] } end
    end
    return out, root and { files = true } or {}
  end
  local list = node.arguments or {}
  local a = list[#ctx.positionals + 1] or (list[#list] and list[#list].many and list[#list])
  if a and a.complete then return values(a.complete, cur, ctx) end
  if a or dashdash then return {}, {} end
  return flag_candidates(spec, cur, seen), {}
end

-- `ghlua __complete WORD... CURRENT`: print the candidates and the
-- directive line. Never fails: an error completes nothing (GHLUA_DEBUG=1
-- shows it on stderr).
function M.complete_command(argv)
  local ok, list, dir = pcall(M.complete, argv)
  if not ok then
    if os.getenv("GHLUA_DEBUG") == "1" then io.stderr:write("ghlua __complete: ", tostring(list), "\n") end
    list, dir = {}, {}
  end
  local out = {}
  for _, c in ipairs(list) do
    if sane(c[1]) then
      out[#out + 1] = c[2] and sane(c[2]) and (c[1] .. "\t" .. c[2]) or c[1]
    end
  end
  local d = {}
  if dir.files then d[#d + 1] = "files" end
  if dir.ext then d[#d + 1] = "ext=" .. dir.ext end
  out[#out + 1] = ":" .. table.concat(d, " ")
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end

-- ---- The scripts ----

M.scripts = {}

M.scripts.bash = [=[
# bash completion for ghlua; generated by 'ghlua completion bash'.
# Load it with: source <(ghlua completion bash)
# The candidates come from the ghlua being completed: ghlua __complete WORDS.
_ghlua() {
    local line=${COMP_LINE:0:COMP_POINT} cur prog out directive pre="" tail wb="" c
    local -a words lines
    read -r -a words <<< "$line"
    if [[ -z $line || $line == *[[:space:]] ]]; then words+=(""); fi
    cur=${words[${#words[@]}-1]}
    prog=${words[0]/#\~/$HOME}
    out=$("$prog" __complete "${words[@]:1}" 2>/dev/null) || return 0
    mapfile -t lines <<< "$out"
    directive=${lines[${#lines[@]}-1]}
    [[ $directive == :* ]] || return 0
    unset 'lines[${#lines[@]}-1]'
    # bash replaces only what follows the last '=' or ':' of the word
    [[ $COMP_WORDBREAKS == *=* ]] && wb+="="
    [[ $COMP_WORDBREAKS == *:* ]] && wb+=":"
    if [[ -n $wb ]]; then tail=${cur##*[$wb]}; pre=${cur:0:${#cur}-${#tail}}; fi
    COMPREPLY=()
    for c in "${lines[@]}"; do
        c=${c%%$'\t'*}
        COMPREPLY+=("${c#"$pre"}")
    done
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *[/=,] ]]; then
        compopt -o nospace 2>/dev/null
    fi
    if [[ $directive == *files* ]]; then
        compopt -o filenames 2>/dev/null
        if [[ $directive =~ ext=([A-Za-z0-9]+) ]]; then
            mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -d -- "$cur"; compgen -f -X "!*.${BASH_REMATCH[1]}" -- "$cur")
        else
            mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
        fi
    fi
    return 0
}
complete -F _ghlua ghlua
]=]

M.scripts.zsh = [=[
#compdef ghlua
# zsh completion for ghlua; generated by 'ghlua completion zsh'.
# Load it with: source <(ghlua completion zsh) after compinit, or save it
# as _ghlua in a directory of $fpath.
# The candidates come from the ghlua being completed: ghlua __complete WORDS.
_ghlua() {
  local out directive line word desc width=0
  local -a lines open open_d closed closed_d
  out=$(${~${(Q)words[1]}} __complete "${(@Q)words[2,CURRENT]}" 2>/dev/null) || return 1
  lines=("${(@f)out}")
  directive=${lines[-1]}
  [[ $directive == :* ]] || return 1
  lines[-1]=()
  for line in "${lines[@]}"; do
    word=${line%%$'\t'*}
    (( ${#word} > width )) && width=${#word}
  done
  for line in "${lines[@]}"; do
    word=${line%%$'\t'*}
    desc=
    [[ $line == *$'\t'* ]] && desc=${line#*$'\t'}
    [[ -n $desc ]] && desc="${(r:width:)word}  -- $desc" || desc=$word
    if [[ $word == *[/=,] ]]; then
      open+=("$word"); open_d+=("$desc")
    else
      closed+=("$word"); closed_d+=("$desc")
    fi
  done
  (( ${#closed} )) && compadd -l -d closed_d -- "${closed[@]}"
  (( ${#open} )) && compadd -l -S '' -d open_d -- "${open[@]}"
  if [[ $directive == *files* ]]; then
    if [[ $directive == *ext=* ]]; then
      local ext=${${directive##*ext=}%% *}
      _files -g "*.${ext}"
    else
      _files
    fi
  fi
  return 0
}
if [[ ${funcstack[1]} == _ghlua ]]; then
  _ghlua "$@"
else
  (( $+functions[compdef] )) && compdef _ghlua ghlua
fi
]=]

M.scripts.fish = [=[
# fish completion for ghlua; generated by 'ghlua completion fish'.
# Save it as ~/.config/fish/completions/ghlua.fish, or: ghlua completion fish | source
# The candidates come from the ghlua being completed: ghlua __complete WORDS.
function __ghlua_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    set -l out (command $tokens[1] __complete $tokens[2..-1] $current 2>/dev/null)
    or return
    set -l directive $out[-1]
    string match -q -- ':*' $directive
    or return
    set -e out[-1]
    for line in $out
        printf '%s\n' $line
    end
    if string match -q -- '*files*' $directive
        set -l ext (string match -r -- 'ext=(\S+)' $directive)[2]
        for f in (__fish_complete_path $current)
            if test -z "$ext"; or string match -qr -- '(/|\.'$ext')(\t.*)?$' $f
                printf '%s\n' $f
            end
        end
    end
end
complete -c ghlua -f -a '(__ghlua_complete)'
]=]

function M.run(argv)
  local shell = argv[1]
  if #argv ~= 1 or not M.scripts[shell] then
    args.usage(shell and ("no completion for '" .. shell .. "': give bash, zsh or fish") or "missing SHELL: give bash, zsh or fish", M.usage)
  end
  io.stdout:write(M.scripts[shell])
  return 0
end

return M
