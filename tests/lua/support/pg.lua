-- A throwaway PostgreSQL server for the specs of the PostgreSQL store: a
-- real server (Debian's), no mock, in a temporary directory, serving on a
-- Unix socket in that directory only.
--
--   local pg = require "support.pg"
--   local server = pg.start()        -- raises, naming `.ci/deps test`, without the binaries
--   local url = server:createdb()    -- a new empty database: its connection URI
--   server:psql(sql [, db])          -- run SQL as the superuser: {code=, out=, err=}
--   server:stop(); server:start()    -- a restart (the socket and data stay)
--   server:destroy()                 -- stop and remove the directory
--
-- Things that are easy to get wrong here (checked):
-- - Debian's server binaries are in /usr/lib/postgresql/15/bin, not on PATH
--   (initdb, pg_ctl, postgres; psql there too). Without them the spec must
--   fail, not skip: `.ci/deps test` installs the postgresql package.
-- - PostgreSQL refuses to run as root, and CI runs as root: initdb and
--   pg_ctl run as the `postgres` user (`runuser -u postgres --`), which
--   must own the data and socket directory and traverse the path to it.
--   os.tmpname's directory (/tmp) is world-traversable; ours is chowned.
-- - `-A trust` and `-U postgres` at initdb: any local OS user, root
--   included, connects as role postgres with no password, over the socket.
-- - `-c listen_addresses=''`: no TCP port at all, so parallel runs never
--   collide; the socket name carries the default port (.s.PGSQL.5432) in a
--   private directory. A libpq URI reads postgresql://postgres@/DB?host=DIR.
-- - fsync=off and initdb --no-sync: a throwaway server on a shared machine;
--   durability across a power cut is not what these specs test (a killed
--   client or a restarted server is).
-- - Stopped by its own `pg_ctl -D DATA stop -m fast`, never by name; -m fast
--   disconnects clients, which the restart tests rely on.
local run = require "support.run"

local M = {}
M.BIN = "/usr/lib/postgresql/15/bin"

local q = run.quote

local function as_owner(cmd)
  if run.sh("id -u").out == "0\n" then return "runuser -u postgres -- " .. cmd end
  return cmd
end

local Server = {}
Server.__index = Server

local function sh(cmd)
  local r = run.sh(cmd)
  if r.code ~= 0 then
    error(("support.pg: %s failed (%d): %s%s"):format(cmd, r.code, r.out, r.err), 2)
  end
  return r
end

function M.start()
  for _, b in ipairs { "initdb", "pg_ctl", "postgres", "psql" } do
    if not io.open(M.BIN .. "/" .. b) then
      error("support.pg: " .. M.BIN .. "/" .. b .. " is missing; install the test packages: .ci/deps test", 2)
    end
  end
  local dir = os.tmpname()
  os.remove(dir)
  sh("mkdir -m 700 " .. q(dir))
  if run.sh("id -u").out == "0\n" then sh("chown postgres: " .. q(dir)) end
  local s = setmetatable({ dir = dir, data = dir .. "/data", log = dir .. "/log", n = 0 }, Server)
  sh(as_owner(("%s/initdb -D %s -A trust -U postgres -E UTF8 --locale=C --no-sync"):format(M.BIN, q(s.data))))
  s:start()
  return s
end

function Server:start()
  sh(as_owner(("%s/pg_ctl -D %s -l %s -w -t 60 -o %s start"):format(M.BIN, q(self.data), q(self.log),
    q("-k " .. q(self.dir) .. " -c listen_addresses='' -c fsync=off -c max_connections=200"))))
  self.running = true
end

function Server:stop()
  if not self.running then return end
  sh(as_owner(("%s/pg_ctl -D %s -w -t 60 stop -m fast"):format(M.BIN, q(self.data))))
  self.running = false
end

function Server:destroy()
  if self.running then pcall(self.stop, self) end
  os.execute("rm -rf " .. q(self.dir))
end

-- The URI of database db as role user (postgres).
function Server:url(db, user)
  return ("postgresql://%s@/%s?host=%s"):format(user or "postgres", db or "postgres", self.dir)
end

function Server:psql(sql, db)
  return run.sh(("%s/psql -X -q -A -t -v ON_ERROR_STOP=1 -h %s -U postgres -d %s -c %s"):format(
    M.BIN, q(self.dir), q(db or "postgres"), q(sql)))
end

-- A new empty database: returns its URI and its name.
function Server:createdb()
  self.n = self.n + 1
  local name = "t" .. self.n
  local r = self:psql("CREATE DATABASE " .. name)
  assert(r.code == 0, "support.pg: CREATE DATABASE failed: " .. r.err)
  return self:url(name), name
end

return M
