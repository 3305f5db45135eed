/*
** ghl.store: the token store, one SQLite file at $GHLUA_HOME/ghlua.db
** (GHLUA_HOME defaults to ${XDG_CONFIG_HOME:-~/.config}/ghlua). It holds
** apps, tokens per (app, resource), refresh claims, a small key/value
** table and the webhook events received (schema 2).
**
** Safety: the directory is created 0700 and the file 0600 whatever the
** umask; a store that others can access or another user owns is refused
** (kind "permissions", the message says how to fix it), and a file that is
** not a ghlua store is refused and left untouched (kind "store"). WAL with
** synchronous=FULL: a write is durable when its method returns, and a
** process killed at any point leaves a consistent store.
**
** Concurrency: every method is one short transaction (BEGIN IMMEDIATE for
** writes, busy_timeout 10 s) and none stays open between calls, so no lock
** is held while Lua does HTTP. A refresh is serialised per (app, resource)
** by a claim row owned by a process, which others take over once the owner
** is dead or its lease has expired, keeping the phase it was left in (see
** store_claim): "may have been sent" survives any number of owners killed
** in a row. Expected failures
** return nil, ghl.error (kind "store", "permissions" or "claim"); misuse
** raises. Nothing here prints, and error messages never carry secrets.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <sqlite3.h>

#include "error.h"
#include "lib_sqlite.h"
#include "store.h"

#define STORE_MT "ghl.store"
#define APP_ID 0x67686C61      /* PRAGMA application_id: "ghla" */
#define SCHEMA_VERSION 2       /* PRAGMA user_version */
#define BUSY_MS 10000
#define MAX_PHASE GHL_STORE_MAX_PHASE

static const char schema_v1[] =
  "CREATE TABLE apps("
  " name TEXT PRIMARY KEY NOT NULL, client_id TEXT NOT NULL, client_secret TEXT,"
  " redirect_uri TEXT, scopes TEXT, whitelabel BOOLEAN NOT NULL DEFAULT 0,"
  " user_type TEXT, created_at NUMERIC NOT NULL, updated_at NUMERIC NOT NULL);"
  "CREATE TABLE tokens("
  " app TEXT NOT NULL, resource_id TEXT NOT NULL, resource_type TEXT NOT NULL,"
  " kind TEXT NOT NULL, access_token TEXT, refresh_token TEXT, expires_at NUMERIC,"
  " scope TEXT, requested_scope TEXT, company_id TEXT, location_id TEXT,"
  " user_id TEXT, user_type TEXT, name TEXT, status TEXT NOT NULL, note TEXT,"
  " created_at NUMERIC NOT NULL, refreshed_at NUMERIC, refreshed_by INTEGER,"
  " previous_refresh_token TEXT, previous_refreshed_at NUMERIC,"
  " PRIMARY KEY(app, resource_id));"
  "CREATE INDEX tokens_resource ON tokens(resource_id);"
  "CREATE TABLE claims("
  " app TEXT NOT NULL, resource_id TEXT NOT NULL, pid INTEGER NOT NULL,"
  " host TEXT NOT NULL, nonce INTEGER NOT NULL, phase TEXT NOT NULL,"
  " started_at NUMERIC NOT NULL, lease_until NUMERIC NOT NULL,"
  " PRIMARY KEY(app, resource_id));"
  "CREATE TABLE kv("
  " ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
  " updated_at NUMERIC NOT NULL, PRIMARY KEY(ns, key));";

/* Schema 2: webhook events, keyed by HighLevel's webhookId (the primary
** key is the de-duplication). body is the raw request body, headers a JSON
** object; status is received, handled or failed. verified is 1, 0, or the
** text 'simulator' (verified with the local simulator's development key,
** not HighLevel's), which reads back as that string. */
static const char schema_v2[] =
  "CREATE TABLE events("
  " id TEXT PRIMARY KEY NOT NULL, type TEXT, location_id TEXT, company_id TEXT,"
  " received_at NUMERIC NOT NULL, body BLOB NOT NULL, headers TEXT,"
  " verified BOOLEAN NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT 'received',"
  " note TEXT, attempts INTEGER NOT NULL DEFAULT 1, updated_at NUMERIC);"
  "CREATE INDEX events_received ON events(received_at);";

/* ---- Statements (prepared on first use, finalized on close) ---- */

/* Claim statements share ?1 app, ?2 resource_id and the owner ?3 pid,
** ?4 host, ?5 nonce (see bind_owner). */
#define OWNER "app = ?1 AND resource_id = ?2 AND pid = ?3 AND host = ?4 AND nonce = ?5"

enum {
  S_PUT_APP, S_GET_APP, S_LIST_APPS, S_DEL_APP, S_DEL_APP_TOKENS, S_DEL_APP_CLAIMS,
  S_PUT_TOKEN, S_GET_TOKEN, S_FIND_TOKENS, S_DEL_TOKEN, S_DEL_TOKEN_CLAIM, S_SET_STATUS,
  S_GET_CLAIM, S_PUT_CLAIM, S_EXTEND_CLAIM, S_SET_PHASE, S_HELD, S_DEL_CLAIM,
  S_COMMIT_REFRESH, S_KV_GET, S_KV_PUT, S_KV_DEL, S_CHECK,
  S_PUT_EVENT, S_GET_EVENT, S_LIST_EVENTS, S_RETRY_EVENT, S_SET_EVENT, S_KV_LIST, S_DATA_VERSION, NSTMT
};

static const char *const sql_text[NSTMT] = {
  [S_PUT_APP] = "INSERT OR REPLACE INTO apps(name, client_id, client_secret, redirect_uri,"
    " scopes, whitelabel, user_type, created_at, updated_at) VALUES(?1, ?2, ?3, ?4, ?5,"
    " COALESCE(?6, 0), ?7, COALESCE((SELECT created_at FROM apps WHERE name = ?1), ?8), ?8)",
  [S_GET_APP] = "SELECT * FROM apps WHERE name = ?1",
  [S_LIST_APPS] = "SELECT * FROM apps ORDER BY name",
  [S_DEL_APP] = "DELETE FROM apps WHERE name = ?1",
  [S_DEL_APP_TOKENS] = "DELETE FROM tokens WHERE app = ?1",
  [S_DEL_APP_CLAIMS] = "DELETE FROM claims WHERE app = ?1",
  [S_PUT_TOKEN] = "INSERT OR REPLACE INTO tokens(app, resource_id, resource_type, kind,"
    " access_token, refresh_token, expires_at, scope, requested_scope, company_id,"
    " location_id, user_id, user_type, name, status, note, created_at, refreshed_at,"
    " refreshed_by, previous_refresh_token, previous_refreshed_at) VALUES(?1, ?2, ?3,"
    " COALESCE(?4, 'oauth'), ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, COALESCE(?15, 'ok'),"
    " ?16, COALESCE(?17, (SELECT created_at FROM tokens WHERE app = ?1 AND resource_id = ?2), ?22),"
    " ?18, ?19, ?20, ?21)",
  [S_GET_TOKEN] = "SELECT * FROM tokens WHERE app = ?1 AND resource_id = ?2",
  [S_FIND_TOKENS] = "SELECT * FROM tokens WHERE (?1 IS NULL OR app = ?1)"
    " AND (?2 IS NULL OR (resource_type = 'Location' AND resource_id = ?2))"
    " AND (?3 IS NULL OR (resource_type = 'Company' AND resource_id = ?3))"
    " AND (?4 IS NULL OR resource_id = ?4) AND (?5 IS NULL OR kind = ?5)"
    " ORDER BY app, resource_id",
  [S_DEL_TOKEN] = "DELETE FROM tokens WHERE app = ?1 AND resource_id = ?2",
  [S_DEL_TOKEN_CLAIM] = "DELETE FROM claims WHERE app = ?1 AND resource_id = ?2",
  [S_SET_STATUS] = "UPDATE tokens SET status = ?3, note = ?4 WHERE app = ?1 AND resource_id = ?2",
  [S_GET_CLAIM] = "SELECT pid, phase, started_at, lease_until, host = ?4,"
    " pid = ?3 AND host = ?4 AND nonce = ?5 FROM claims WHERE app = ?1 AND resource_id = ?2",
  /* A takeover keeps the phase of the claim it replaces unless that was
  ** 'claimed': a refresh that may have been sent stays "may be sent" until
  ** its token is committed, however many owners die in a row. */
  [S_PUT_CLAIM] = "INSERT OR REPLACE INTO claims(app, resource_id, pid, host, nonce, phase,"
    " started_at, lease_until) VALUES(?1, ?2, ?3, ?4, ?5, COALESCE((SELECT phase FROM claims"
    " WHERE app = ?1 AND resource_id = ?2 AND phase <> 'claimed'), 'claimed'), ?6, ?7)",
  [S_EXTEND_CLAIM] = "UPDATE claims SET lease_until = ?6 WHERE " OWNER,
  [S_SET_PHASE] = "UPDATE claims SET phase = ?6 WHERE " OWNER " AND lease_until > ?7",
  [S_HELD] = "SELECT 1 FROM claims WHERE " OWNER,
  [S_DEL_CLAIM] = "DELETE FROM claims WHERE " OWNER,
  /* SET expressions see the old row: the rotation reads the old values. */
  [S_COMMIT_REFRESH] = "UPDATE tokens SET"
    " previous_refresh_token = CASE WHEN ?2 IS NOT NULL AND ?2 IS NOT refresh_token"
    "   THEN refresh_token ELSE previous_refresh_token END,"
    " previous_refreshed_at = CASE WHEN ?2 IS NOT NULL AND ?2 IS NOT refresh_token"
    "   THEN COALESCE(refreshed_at, created_at, ?15) ELSE previous_refreshed_at END,"
    " access_token = COALESCE(?1, access_token), refresh_token = COALESCE(?2, refresh_token),"
    " expires_at = COALESCE(?3, expires_at), scope = COALESCE(?4, scope),"
    " requested_scope = COALESCE(?5, requested_scope), company_id = COALESCE(?6, company_id),"
    " location_id = COALESCE(?7, location_id), user_id = COALESCE(?8, user_id),"
    " user_type = COALESCE(?9, user_type), name = COALESCE(?10, name),"
    " status = COALESCE(?11, 'ok'), note = ?12, refreshed_at = ?15, refreshed_by = ?16"
    " WHERE app = ?13 AND resource_id = ?14",
  [S_KV_GET] = "SELECT value, updated_at FROM kv WHERE ns = ?1 AND key = ?2",
  [S_KV_PUT] = "INSERT OR REPLACE INTO kv(ns, key, value, updated_at) VALUES(?1, ?2, ?3, ?4)",
  [S_KV_DEL] = "DELETE FROM kv WHERE ns = ?1 AND key = ?2",
  [S_CHECK] = "PRAGMA integrity_check",
  [S_PUT_EVENT] = "INSERT OR IGNORE INTO events(id, type, location_id, company_id, received_at,"
    " body, headers, verified, status, note, updated_at) VALUES(?1, ?2, ?3, ?4, COALESCE(?5, ?11),"
    " CAST(?6 AS BLOB), ?7, COALESCE(?8, 0), COALESCE(?9, 'received'), ?10, ?11)",
  [S_GET_EVENT] = "SELECT * FROM events WHERE id = ?1",
  /* the newest ?3 (all when NULL) matching, oldest first */
  [S_LIST_EVENTS] = "SELECT * FROM (SELECT rowid AS seq, * FROM events"
    " WHERE (?1 IS NULL OR type = ?1) AND (?2 IS NULL OR received_at >= ?2)"
    " AND (?4 IS NULL OR location_id = ?4)"
    " ORDER BY received_at DESC, seq DESC LIMIT COALESCE(?3, -1)) ORDER BY received_at, seq",
  [S_RETRY_EVENT] = "UPDATE events SET status = 'received', note = NULL, attempts = attempts + 1,"
    " updated_at = ?2 WHERE id = ?1 AND status = 'failed'",
  [S_SET_EVENT] = "UPDATE events SET status = ?2, note = ?3, updated_at = ?4 WHERE id = ?1",
  [S_KV_LIST] = "SELECT ns, key, value, updated_at FROM kv WHERE (?1 IS NULL OR ns = ?1) ORDER BY ns, key",
  [S_DATA_VERSION] = "PRAGMA data_version",
};

/* ---- Record fields: what Lua tables may carry, in parameter order ---- */

const struct field ghl_app_fields[] = {       /* S_PUT_APP ?1..?7 */
  {"name", 's'}, {"client_id", 's'}, {"client_secret", 's'}, {"redirect_uri", 's'},
  {"scopes", 's'}, {"whitelabel", 'b'}, {"user_type", 's'}, {NULL, 0}
};

const struct field ghl_token_fields[] = {     /* S_PUT_TOKEN ?1..?21 */
  {"app", 's'}, {"resource_id", 's'}, {"resource_type", 's'}, {"kind", 's'},
  {"access_token", 's'}, {"refresh_token", 's'}, {"expires_at", 'n'}, {"scope", 's'},
  {"requested_scope", 's'}, {"company_id", 's'}, {"location_id", 's'}, {"user_id", 's'},
  {"user_type", 's'}, {"name", 's'}, {"status", 's'}, {"note", 's'}, {"created_at", 'n'},
  {"refreshed_at", 'n'}, {"refreshed_by", 'i'}, {"previous_refresh_token", 's'},
  {"previous_refreshed_at", 'n'}, {NULL, 0}
};

const struct field ghl_refresh_fields[] = {   /* S_COMMIT_REFRESH ?1..?12 */
  {"access_token", 's'}, {"refresh_token", 's'}, {"expires_at", 'n'}, {"scope", 's'},
  {"requested_scope", 's'}, {"company_id", 's'}, {"location_id", 's'}, {"user_id", 's'},
  {"user_type", 's'}, {"name", 's'}, {"status", 's'}, {"note", 's'}, {NULL, 0}
};

const struct field ghl_find_fields[] = {      /* S_FIND_TOKENS ?1..?5 */
  {"app", 's'}, {"location", 's'}, {"company", 's'}, {"resource_id", 's'}, {"kind", 's'},
  {NULL, 0}
};

const struct field ghl_event_fields[] = {     /* S_PUT_EVENT ?1..?10 */
  {"id", 's'}, {"type", 's'}, {"location_id", 's'}, {"company_id", 's'}, {"received_at", 'n'},
  {"body", 's'}, {"headers", 's'}, {"verified", 'v'}, {"status", 's'}, {"note", 's'}, {NULL, 0}
};

const struct field ghl_list_event_fields[] = {  /* S_LIST_EVENTS ?1..?4 */
  {"type", 's'}, {"since", 'n'}, {"limit", 'i'}, {"location", 's'}, {NULL, 0}
};

/* ---- Process identity (claim owner) ---- */

/* A claim belongs to one process incarnation: pid, plus a nonce (start
** time in ns) so a later process that reuses the pid is not mistaken for
** the owner, plus the host and pid namespace, outside which kill(pid, 0)
** says nothing. Recomputed after a fork. */
struct ghl_owner ghl_store_me;
#define me ghl_store_me

void ghl_store_init_me(void) {
  char name[256] = "", ns[64] = "";
  struct timespec ts;
  ssize_t n;
  if (me.pid == getpid()) return;
  me.pid = getpid();
  clock_gettime(CLOCK_REALTIME, &ts);
  me.nonce = (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
  if (gethostname(name, sizeof name - 1) != 0) name[0] = '\0';
  name[sizeof name - 1] = '\0';
  n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  ns[n > 0 ? n : 0] = '\0';
  snprintf(me.host, sizeof me.host, "%s %s", name, ns);
}

/* Wall-clock seconds with a fraction: claim times and leases, compared
** across processes. Records use whole seconds (time()), as os.time does. */
double ghl_store_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- The userdata ---- */

struct store {
  sqlite3 *db;                 /* NULL when closed */
  int tx, tx_failed;           /* inside db:transaction; a write in it failed */
  sqlite3_stmt *stmt[NSTMT];
  char path[];                 /* the file, for messages and db.path */
};

/* The open store at stack 1; raises if it is not one or is closed. */
static struct store *check_store(lua_State *L) {
  struct store *s = luaL_checkudata(L, 1, STORE_MT);
  if (s->db == NULL) luaL_error(L, "attempt to use a closed store");
  return s;
}

/* Finalize every statement and close the connection. Idempotent; used by
** close, __gc and __close. A transaction left open by a raise is rolled
** back by SQLite. */
static void store_release(struct store *s) {
  int i;
  for (i = 0; i < NSTMT; i++) {
    sqlite3_finalize(s->stmt[i]);
    s->stmt[i] = NULL;
  }
  if (s->db) sqlite3_close_v2(s->db);
  s->db = NULL;
}

/* Statement id, reset and unbound, or NULL (the error is in s->db). */
static sqlite3_stmt *stmt(struct store *s, int id) {
  sqlite3_stmt **p = &s->stmt[id];
  if (*p == NULL &&
      sqlite3_prepare_v3(s->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, p, NULL) != SQLITE_OK)
    return NULL;
  sqlite3_reset(*p);
  sqlite3_clear_bindings(*p);
  return *p;
}

/* error.code for an SQLite result: "busy", "full", "corrupt", ... */
static const char *code_name(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY: return "busy";
    case SQLITE_LOCKED: return "locked";
    case SQLITE_FULL: return "full";
    case SQLITE_CORRUPT: return "corrupt";
    case SQLITE_NOTADB: return "notadb";
    case SQLITE_READONLY: return "readonly";
    case SQLITE_IOERR: return "ioerr";
    case SQLITE_CANTOPEN: return "cantopen";
    case SQLITE_NOMEM: return "nomem";
    default: return "sqlite";
  }
}

/* Text appended to SQLite's own message: what it means for the user. */
static const char *code_hint(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
      return " (another process kept the store locked for more than 10 s)";
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return "; the file was left unchanged: move it aside to start a new store";
    default: return "";
  }
}

/* Push nil, ghl.error{kind="store", code=...} for the last SQLite error of
** s, then reset every statement and roll back any open transaction (the
** message is taken first: the rollback would replace it). Returns 2. */
static int db_fail(lua_State *L, struct store *s) {
  int i, rc = sqlite3_extended_errcode(s->db);
  if (s->tx && s->tx_failed)   /* begin() refused: SQLite itself holds no error for it */
    ghl_fail(L, "store", "token store %s: an earlier statement of this transaction failed; nothing of it"
             " will be written", s->path);
  else
    ghl_fail(L, "store", "token store %s: %s%s", s->path, sqlite3_errmsg(s->db), code_hint(rc));
  lua_pushstring(L, code_name(rc));
  lua_setfield(L, -2, "code");
  for (i = 0; i < NSTMT; i++)
    if (s->stmt[i]) sqlite3_reset(s->stmt[i]);
  if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  if (s->tx) s->tx_failed = 1;
  return 2;
}

/* BEGIN IMMEDIATE (waits up to busy_timeout for the write lock). A
** transaction left open by an earlier raise is rolled back first. Inside
** db:transaction the outer transaction is used (SQLITE_ABORT once a write
** in it failed: nothing more may run outside it). */
static int begin(struct store *s) {
  if (s->tx) return s->tx_failed ? SQLITE_ABORT : SQLITE_OK;
  if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
}

/* COMMIT: with synchronous=FULL the WAL is fsynced before it returns.
** Inside db:transaction, the transaction's own commit does it. */
static int commit(struct store *s) {
  if (s->tx) return s->tx_failed ? SQLITE_ABORT : SQLITE_OK;
  return sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
}

/* Step a write statement to completion and reset it: SQLITE_OK or the
** error (left unreset for db_fail). */
static int run(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return rc;
  sqlite3_reset(st);
  return SQLITE_OK;
}

/* Run one write statement in its own transaction; *n = rows changed. */
static int write1(struct store *s, sqlite3_stmt *st, int *n) {
  int rc = begin(s);
  if (rc == SQLITE_OK) rc = run(st);
  if (rc == SQLITE_OK) {
    *n = sqlite3_changes(s->db);
    rc = commit(s);
  }
  return rc;
}

/* Push the outcome of running write st in its own transaction: true, or
** with `changed`, whether it changed a row; or nil, err. */
static int push_write(lua_State *L, struct store *s, sqlite3_stmt *st, int changed) {
  int n = 0;
  if (st == NULL || write1(s, st, &n) != SQLITE_OK) return db_fail(L, s);
  lua_pushboolean(L, !changed || n > 0);
  return 1;
}

/* ---- Lua values <-> rows ---- */

/* Push the current row of st as a table keyed by column name; NULL columns
** are left out, BOOLEAN columns become booleans. Stack: +1. */
static void push_row(lua_State *L, sqlite3_stmt *st) {
  int i, n = sqlite3_column_count(st);
  lua_createtable(L, 0, n);
  for (i = 0; i < n; i++) {
    const char *decl = sqlite3_column_decltype(st, i);
    switch (sqlite3_column_type(st, i)) {
      case SQLITE_NULL: continue;
      case SQLITE_INTEGER:
        if (decl && strcmp(decl, "BOOLEAN") == 0)
          lua_pushboolean(L, sqlite3_column_int64(st, i) != 0);
        else
          lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, i));
        break;
      case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, i)); break;
      default:
        lua_pushlstring(L, (const char *)sqlite3_column_text(st, i),
                        (size_t)sqlite3_column_bytes(st, i));
    }
    lua_setfield(L, -2, sqlite3_column_name(st, i));
  }
}

/* Push an array of all rows of st (then reset it), or nil, err. */
static int push_rows(lua_State *L, struct store *s, sqlite3_stmt *st) {
  int rc, n = 0;
  lua_newtable(L);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    push_row(L, st);
    lua_rawseti(L, -2, ++n);
  }
  if (rc != SQLITE_DONE) return db_fail(L, s);
  sqlite3_reset(st);
  return 1;
}

/* Push the one row of st (or nil when there is none), or nil, err. */
static int push_one(lua_State *L, struct store *s, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) push_row(L, st);
  else if (rc == SQLITE_DONE) lua_pushnil(L);
  else return db_fail(L, s);
  sqlite3_reset(st);
  return 1;
}

/* Does the value at idx have the field type (see struct field)? */
static int type_ok(lua_State *L, int idx, char type) {
  switch (type) {
    case 's': return lua_type(L, idx) == LUA_TSTRING;
    case 'n': return lua_type(L, idx) == LUA_TNUMBER;
    case 'i': return lua_isinteger(L, idx);
    case 'v': return lua_type(L, idx) == LUA_TBOOLEAN || lua_type(L, idx) == LUA_TSTRING;
    default: return lua_type(L, idx) == LUA_TBOOLEAN;
  }
}

/* Raise unless every key of the table at idx is one of fields and holds a
** value of that field's type: misspelt fields are mistakes, not data. */
void ghl_check_fields(lua_State *L, int idx, const struct field *fields, const char *what) {
  static const char *const tname[] = {"s", "a string", "n", "a number", "i", "an integer",
                                      "b", "a boolean", "v", "a boolean or a string"};
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const struct field *f = fields;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int t = 0;
    while (f->name && (k == NULL || strcmp(f->name, k) != 0)) f++;
    if (f->name == NULL)
      luaL_error(L, "%s: unknown field '%s'", what, luaL_tolstring(L, -2, NULL));
    if (!type_ok(L, -1, f->type)) {
      while (tname[t][0] != f->type) t += 2;
      luaL_error(L, "%s: field '%s' must be %s, got %s", what, k, tname[t + 1],
                 luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
}

/* Raise unless field k of the table at idx is a string (when required) and,
** if a or b is given, equal to one of them. */
void ghl_check_value(lua_State *L, int idx, const char *k, int required,
                        const char *a, const char *b, const char *what) {
  const char *v;
  lua_getfield(L, idx, k);
  v = lua_tostring(L, -1);
  if (v == NULL && required)
    luaL_error(L, "%s: field '%s' is required", what, k);
  if (v && a && strcmp(v, a) != 0 && strcmp(v, b) != 0)
    luaL_error(L, "%s: field '%s' must be \"%s\" or \"%s\", got \"%s\"", what, k, a, b, v);
  lua_pop(L, 1);
}

/* Bind the fields of the table at idx to parameters first.. of st (absent
** fields bind NULL). The table was checked with check_fields. */
static void bind_fields(lua_State *L, int idx, sqlite3_stmt *st,
                        const struct field *fields, int first) {
  int i;
  for (i = 0; fields[i].name; i++) {
    int p = first + i;
    size_t len;
    const char *str;
    lua_getfield(L, idx, fields[i].name);
    if (lua_isnil(L, -1)) sqlite3_bind_null(st, p);
    else if (lua_type(L, -1) == LUA_TBOOLEAN) sqlite3_bind_int(st, p, lua_toboolean(L, -1));
    else if (lua_isinteger(L, -1)) sqlite3_bind_int64(st, p, lua_tointeger(L, -1));
    else if (lua_type(L, -1) == LUA_TNUMBER) sqlite3_bind_double(st, p, lua_tonumber(L, -1));
    else {
      str = lua_tolstring(L, -1, &len);
      sqlite3_bind_text64(st, p, str, len, SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    lua_pop(L, 1);
  }
}

/* Bind the string at stack idx (copied) to parameter p, or NULL. */
static void bind_str(lua_State *L, sqlite3_stmt *st, int p, int idx) {
  size_t len;
  const char *str = lua_tolstring(L, idx, &len);
  if (str) sqlite3_bind_text64(st, p, str, len, SQLITE_TRANSIENT, SQLITE_UTF8);
  else sqlite3_bind_null(st, p);
}

/* Statement id with the strings at stack 2..n+1 (raises unless they are)
** bound to ?1..?n; NULL on error (in s->db). */
static sqlite3_stmt *stmt_args(lua_State *L, struct store *s, int id, int n) {
  sqlite3_stmt *st;
  int i;
  for (i = 2; i <= n + 1; i++) luaL_checkstring(L, i);
  if ((st = stmt(s, id)) != NULL)
    for (i = 1; i <= n; i++) bind_str(L, st, i, i + 1);
  return st;
}

/* ---- Paths and permissions ---- */

/* Push the store path from GHLUA_HOME / XDG_CONFIG_HOME / HOME. Returns 1,
** or 2 with nil, err pushed when none is set. */
static int push_default_path(lua_State *L) {
  const char *home = getenv("GHLUA_HOME");
  const char *xdg = getenv("XDG_CONFIG_HOME");
  const char *user = getenv("HOME");
  if (home && *home)
    lua_pushfstring(L, "%s/ghlua.db", home);
  else if (xdg && *xdg == '/')       /* the XDG spec ignores relative paths */
    lua_pushfstring(L, "%s/ghlua/ghlua.db", xdg);
  else if (user && *user)
    lua_pushfstring(L, "%s/.config/ghlua/ghlua.db", user);
  else
    return ghl_fail(L, "store", "cannot locate the token store: set GHLUA_HOME or HOME");
  return 1;
}

/* Push path quoted for a shell command line when it needs it. */
static const char *push_quoted(lua_State *L, const char *path) {
  luaL_Buffer b;
  if (strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+:@")
      == strlen(path))
    return lua_pushstring(L, path);
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '\'');
  for (; *path; path++) {
    if (*path == '\'') luaL_addstring(&b, "'\\''");
    else luaL_addchar(&b, *path);
  }
  luaL_addchar(&b, '\'');
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Check that path (a directory or a regular file) is ours and private.
** Returns 0, or 2 with nil, err pushed (kind "permissions" naming the fix,
** or "store"). A missing path is fine when optional. */
static int check_private(lua_State *L, const char *path, int isdir, int optional) {
  struct stat st;
  char mode[8];
  if (stat(path, &st) != 0) {
    if (errno == ENOENT && optional) return 0;
    return ghl_fail(L, "store", "token store %s: %s", path, strerror(errno));
  }
  if (isdir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
    return ghl_fail(L, "store", "token store %s is not a %s", path, isdir ? "directory" : "regular file");
  snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
  if (st.st_uid != geteuid()) {
    ghl_fail(L, "permissions", "%s is owned by uid %d, not by you (uid %d); refusing to use another user's token store",
             path, (int)st.st_uid, (int)geteuid());
  } else if (isdir && (st.st_mode & S_ISVTX)) {   /* /tmp: chmod is not the fix */
    ghl_fail(L, "permissions", "%s is a shared directory (mode %s); keep the token store in a private one (GHLUA_HOME)",
             path, mode);
  } else if (st.st_mode & 077) {
    const char *q = push_quoted(L, path);
    ghl_fail(L, "permissions", "%s is %s by others (mode %s); run: chmod %s %s", path,
             (st.st_mode & 044) ? "readable" : (st.st_mode & 022) ? "writable" : "accessible",
             mode, isdir ? "700" : "600", q);
  } else {
    return 0;
  }
  lua_pushstring(L, path);
  lua_setfield(L, -2, "path");
  return 2;
}

/* mkdir -p dir; the directories it creates are 0700 whatever the umask.
** Returns 0, or 2 with nil, err pushed. */
static int make_dirs(lua_State *L, char *dir) {
  char *p = dir;
  for (;;) {
    char c;
    p += strspn(p, "/");
    p += strcspn(p, "/");
    c = *p;
    *p = '\0';
    if (mkdir(dir, 0700) == 0) chmod(dir, 0700);
    else if (errno != EEXIST) {
      int e = errno;
      ghl_fail(L, "store", "cannot create directory %s: %s", dir, strerror(e));
      *p = c;
      return 2;
    }
    *p = c;
    if (c == '\0') return 0;
  }
}

/* Create the directory and an empty 0600 file when missing, then check
** both, and the -wal and -shm files if any, are private. Returns 0, or 2
** with nil, err pushed. */
static int prepare_files(lua_State *L, const char *path) {
  char buf[PATH_MAX], *slash;
  const char *sfx[] = {"-wal", "-shm"};
  int fd, i, r;
  if (strlen(path) + 5 > sizeof buf)
    return ghl_fail(L, "store", "token store path too long: %s", path);
  strcpy(buf, path);
  slash = strrchr(buf, '/');
  if (slash == NULL) strcpy(buf, ".");
  else if (slash == buf) buf[1] = '\0';
  else *slash = '\0';
  if ((r = make_dirs(L, buf)) != 0 || (r = check_private(L, buf, 1, 0)) != 0) return r;
  fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) {
    fchmod(fd, 0600);                /* umask-proof */
    close(fd);
    if ((fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
      fsync(fd);                     /* the new name survives a power cut */
      close(fd);
    }
  } else if (errno != EEXIST) {
    return ghl_fail(L, "store", "cannot create %s: %s", path, strerror(errno));
  }
  if ((r = check_private(L, path, 0, 0)) != 0) return r;
  for (i = 0; i < 2; i++) {
    snprintf(buf, sizeof buf, "%s%s", path, sfx[i]);
    if ((r = check_private(L, buf, 0, 1)) != 0) return r;
  }
  return 0;
}

/* After SQLite made them: make -wal and -shm of ours 0600 if they are wider. */
static void tighten_sidecars(const char *path) {
  const char *sfx[] = {"-wal", "-shm"};
  char buf[PATH_MAX];
  struct stat st;
  int i;
  for (i = 0; i < 2; i++) {
    snprintf(buf, sizeof buf, "%s%s", path, sfx[i]);
    if (stat(buf, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 077))
      chmod(buf, 0600);
  }
}

/* ---- Opening and the schema ---- */

/* Run sql and copy the first column of its first row to out (if any).
** Returns an SQLite result code. */
static int query1(sqlite3 *db, const char *sql, char *out, size_t n) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(st, 0);
    if (out) snprintf(out, n, "%s", v ? v : "");
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    if (out && n) out[0] = '\0';
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

/* Read application_id, user_version and the number of tables, in one
** statement so the three come from one snapshot. */
static int read_schema(sqlite3 *db, long *app_id, long *version, long *tables) {
  sqlite3_stmt *st;
  int rc;
  *app_id = *version = *tables = 0;
  rc = sqlite3_prepare_v2(db, "SELECT a.application_id, v.user_version,"
    " (SELECT count(*) FROM sqlite_master) FROM pragma_application_id a, pragma_user_version v",
    -1, &st, NULL);
  if (rc != SQLITE_OK) return rc;
  if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    *app_id = (long)sqlite3_column_int64(st, 0);
    *version = (long)sqlite3_column_int64(st, 1);
    *tables = (long)sqlite3_column_int64(st, 2);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

/* Is the schema (application_id, user_version, table count) one we can
** use? Returns 0 if so, else 2 with nil, err pushed (code "foreign" or
** "version"). An empty database (no tables, ids 0) is usable: it is new. */
static int check_schema(lua_State *L, struct store *s, long app_id, long version, long tables) {
  if (app_id == 0 && version == 0 && tables == 0) return 0;
  if (app_id == APP_ID && version >= 1 && version <= SCHEMA_VERSION) return 0;
  ghl_fail(L, "store", app_id != APP_ID
           ? "token store %s is a SQLite database of another program; it was left unchanged"
           : "token store %s was written by a newer ghlua (schema %d); it was left unchanged",
           s->path, (int)version);
  lua_pushstring(L, app_id != APP_ID ? "foreign" : "version");
  lua_setfield(L, -2, "code");
  return 2;
}

/* Set up the connection and the schema. The file is only read until it is
** known to be empty or ours (a non-database fails the first read with
** SQLITE_NOTADB), so anything else is refused unchanged. Then WAL,
** synchronous=FULL, secure_delete (deleted tokens are zeroed), and the
** schema is created or migrated to SCHEMA_VERSION under the write lock.
** Returns 1, or 2 with nil, err pushed. */
static int setup(lua_State *L, struct store *s) {
  char mode[16], init[96];
  long app_id, version, tables;
  struct timespec pause = {0, 20 * 1000 * 1000};
  double deadline = ghl_store_now() + BUSY_MS / 1000.0;
  int rc;
  sqlite3_busy_timeout(s->db, BUSY_MS);
  sqlite3_extended_result_codes(s->db, 1);
  if (read_schema(s->db, &app_id, &version, &tables) != SQLITE_OK) return db_fail(L, s);
  if (check_schema(L, s, app_id, version, tables) != 0) return 2;
  /* Switching a new file to WAL can fail at once with SQLITE_BUSY when
  ** two processes race (SQLite skips the busy handler to avoid a deadlock
  ** in rollback mode); the race is short, so retry for a while. */
  while ((rc = query1(s->db, "PRAGMA journal_mode=WAL", mode, sizeof mode)) == SQLITE_BUSY &&
         ghl_store_now() < deadline)
    nanosleep(&pause, NULL);
  if (rc != SQLITE_OK) return db_fail(L, s);
  if (strcmp(mode, "wal") != 0)
    return ghl_fail(L, "store", "token store %s: cannot use WAL mode (got %s)", s->path, mode);
  if (sqlite3_exec(s->db, "PRAGMA synchronous=FULL; PRAGMA secure_delete=ON", NULL, NULL, NULL)
      != SQLITE_OK)
    return db_fail(L, s);
  if (app_id == APP_ID && version == SCHEMA_VERSION) return 1;
  if (begin(s) != SQLITE_OK || read_schema(s->db, &app_id, &version, &tables) != SQLITE_OK)
    return db_fail(L, s);
  if (check_schema(L, s, app_id, version, tables) != 0) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return 2;
  }
  if (app_id == 0) {
    snprintf(init, sizeof init, "PRAGMA application_id = %d; PRAGMA user_version = 1", APP_ID);
    if (sqlite3_exec(s->db, schema_v1, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, init, NULL, NULL, NULL) != SQLITE_OK)
      return db_fail(L, s);
    version = 1;
  }
  /* Migrations from user_version N to N+1, in this transaction; a new
  ** store is made at 1 and migrated like an old one. */
  if (version < 2 && (sqlite3_exec(s->db, schema_v2, NULL, NULL, NULL) != SQLITE_OK ||
                      sqlite3_exec(s->db, "PRAGMA user_version = 2", NULL, NULL, NULL) != SQLITE_OK))
    return db_fail(L, s);
  if (commit(s) != SQLITE_OK) return db_fail(L, s);
  return 1;
}

/* default_path() -> path, or nil, err when neither GHLUA_HOME, an absolute
** XDG_CONFIG_HOME nor HOME is set. */
static int store_default_path(lua_State *L) {
  return push_default_path(L);
}

/* open([path]) -> db, or nil, err. A PostgreSQL connection string
** (postgresql://..., postgres://... or key=value pairs) opens the
** PostgreSQL engine instead (store_pg.c), same methods. The userdata is made first, closed, so
** a failure or a raise leaves nothing to clean up but what __gc closes.
** Creates the directory (0700), the file (0600) and the schema as needed. */
static int store_open(lua_State *L) {
  const char *path;
  size_t len;
  struct store *s;
  int r;
  lua_settop(L, 1);
  if (lua_isnil(L, 1)) {
    if (push_default_path(L) != 1) return 2;
    lua_replace(L, 1);
  }
  path = luaL_checklstring(L, 1, &len);
  if (ghl_store_pg_is_conninfo(path)) return ghl_store_pg_open(L);   /* store_pg.c */
  luaL_argcheck(L, len > 0 && strlen(path) == len, 1, "not a file name");
  if (!ghl_lib_load(&ghl_sqlite_lib)) return ghl_lib_fail(L, &ghl_sqlite_lib);   /* SQLite, opened here (lib_sqlite.h) */
  s = lua_newuserdatauv(L, sizeof *s + len + 1, 0);
  memset(s, 0, sizeof *s);
  memcpy(s->path, path, len + 1);
  luaL_setmetatable(L, STORE_MT);
  if ((r = prepare_files(L, s->path)) != 0) return r;
  if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL)
      != SQLITE_OK) {
    if (s->db == NULL) return ghl_fail(L, "store", "token store %s: out of memory", s->path);
    r = db_fail(L, s);
    store_release(s);
    return r;
  }
  if ((r = setup(L, s)) != 1) {
    store_release(s);
    return r;
  }
  tighten_sidecars(s->path);
  lua_settop(L, 2);                  /* the userdata */
  return 1;
}

/* ---- Apps ---- */

/* db:put_app{name=, client_id=, client_secret=, redirect_uri=, scopes=,
** whitelabel=, user_type=} -> true, or nil, err. Insert or replace;
** created_at survives a replace. */
static int store_put_app(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st;
  ghl_check_fields(L, 2, ghl_app_fields, "put_app");
  ghl_check_value(L, 2, "name", 1, NULL, NULL, "put_app");
  ghl_check_value(L, 2, "client_id", 1, NULL, NULL, "put_app");
  ghl_check_value(L, 2, "user_type", 0, "Location", "Company", "put_app");
  if ((st = stmt(s, S_PUT_APP)) != NULL) {
    bind_fields(L, 2, st, ghl_app_fields, 1);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)time(NULL));
  }
  return push_write(L, s, st, 0);
}

/* db:get_app(name) -> app table | nil, or nil, err. */
static int store_get_app(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st = stmt_args(L, s, S_GET_APP, 1);
  if (st == NULL) return db_fail(L, s);
  return push_one(L, s, st);
}

/* db:list_apps() -> array of app tables sorted by name, or nil, err. */
static int store_list_apps(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st = stmt(s, S_LIST_APPS);
  if (st == NULL) return db_fail(L, s);
  return push_rows(L, s, st);
}

/* db:remove_app(name) -> true if the app or any of its tokens existed,
** else false; or nil, err. Its tokens and claims go in the same
** transaction. */
static int store_remove_app(lua_State *L) {
  struct store *s = check_store(L);
  static const int ids[] = {S_DEL_APP, S_DEL_APP_TOKENS, S_DEL_APP_CLAIMS};
  int i, n = 0;
  luaL_checkstring(L, 2);
  if (begin(s) != SQLITE_OK) return db_fail(L, s);
  for (i = 0; i < 3; i++) {
    sqlite3_stmt *st = stmt(s, ids[i]);
    if (st == NULL) return db_fail(L, s);
    bind_str(L, st, 1, 2);
    if (run(st) != SQLITE_OK) return db_fail(L, s);
    if (i < 2) n += sqlite3_changes(s->db);
  }
  if (commit(s) != SQLITE_OK) return db_fail(L, s);
  lua_pushboolean(L, n > 0);
  return 1;
}

/* ---- Tokens ---- */

/* db:put_token{app=, resource_id=, resource_type=, ...} -> true, or nil,
** err. Insert or replace the whole record; kind defaults to "oauth",
** status to "ok", created_at to the existing record's or now. */
static int store_put_token(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st;
  ghl_check_fields(L, 2, ghl_token_fields, "put_token");
  ghl_check_value(L, 2, "app", 1, NULL, NULL, "put_token");
  ghl_check_value(L, 2, "resource_id", 1, NULL, NULL, "put_token");
  ghl_check_value(L, 2, "resource_type", 1, "Location", "Company", "put_token");
  ghl_check_value(L, 2, "kind", 0, "oauth", "pit", "put_token");
  if ((st = stmt(s, S_PUT_TOKEN)) != NULL) {
    bind_fields(L, 2, st, ghl_token_fields, 1);
    sqlite3_bind_int64(st, 22, (sqlite3_int64)time(NULL));
  }
  return push_write(L, s, st, 0);
}

/* db:get_token(app, resource_id) -> token table | nil, or nil, err. */
static int store_get_token(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st = stmt_args(L, s, S_GET_TOKEN, 2);
  if (st == NULL) return db_fail(L, s);
  return push_one(L, s, st);
}

/* db:find_tokens{app=, location=, company=, resource_id=, kind=} -> array
** sorted by app, resource_id, or nil, err. All filters optional; location
** matches Location tokens' resource_id, company Company tokens'. */
static int store_find_tokens(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st;
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  ghl_check_fields(L, 2, ghl_find_fields, "find_tokens");
  if ((st = stmt(s, S_FIND_TOKENS)) == NULL) return db_fail(L, s);
  bind_fields(L, 2, st, ghl_find_fields, 1);
  return push_rows(L, s, st);
}

/* db:delete_token(app, resource_id) -> true if it existed, else false; or
** nil, err. A claim on it goes too. */
static int store_delete_token(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *del, *claim;
  int n;
  if ((del = stmt_args(L, s, S_DEL_TOKEN, 2)) == NULL ||
      (claim = stmt_args(L, s, S_DEL_TOKEN_CLAIM, 2)) == NULL)
    return db_fail(L, s);
  if (begin(s) != SQLITE_OK || run(del) != SQLITE_OK) return db_fail(L, s);
  n = sqlite3_changes(s->db);
  if (run(claim) != SQLITE_OK || commit(s) != SQLITE_OK) return db_fail(L, s);
  lua_pushboolean(L, n > 0);
  return 1;
}

/* db:set_status(app, resource_id, status [, note]) -> true if the token
** exists, else false; or nil, err. The note is replaced (nil clears it). */
static int store_set_status(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st = stmt_args(L, s, S_SET_STATUS, 3);
  luaL_optstring(L, 5, NULL);
  if (st) bind_str(L, st, 4, 5);
  return push_write(L, s, st, 1);
}

/* ---- Refresh claims ---- */

/* Claim statement id with app (?1) and resource_id (?2) from stack 2, 3
** (raises unless strings) and this process as owner (?3 pid, ?4 host,
** ?5 nonce) bound; NULL on error (in s->db). */
static sqlite3_stmt *stmt_owner(lua_State *L, struct store *s, int id) {
  sqlite3_stmt *st = stmt_args(L, s, id, 2);
  ghl_store_init_me();
  if (st) {
    sqlite3_bind_int64(st, 3, me.pid);
    sqlite3_bind_text(st, 4, me.host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, me.nonce);
  }
  return st;
}

/* Read the claim on (app, resource_id) at stack 2, 3 into c. Returns an
** SQLite result code. */
static int read_claim(lua_State *L, struct store *s, struct claim *c) {
  sqlite3_stmt *st = stmt_owner(L, s, S_GET_CLAIM);
  const char *phase;
  int rc;
  memset(c, 0, sizeof *c);
  if (st == NULL) return sqlite3_errcode(s->db);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    c->found = 1;
    c->pid = (lua_Integer)sqlite3_column_int64(st, 0);
    phase = (const char *)sqlite3_column_text(st, 1);   /* NULL in a damaged file */
    snprintf(c->phase, sizeof c->phase, "%s", phase ? phase : "");
    c->started_at = sqlite3_column_double(st, 2);
    c->lease_until = sqlite3_column_double(st, 3);
    c->samehost = sqlite3_column_int(st, 4);
    c->mine = sqlite3_column_int(st, 5);
  } else if (rc != SQLITE_DONE) {
    return rc;
  }
  sqlite3_reset(st);
  return SQLITE_OK;
}

/* Why a claim held by someone else may be taken over: "dead" (same host and
** pid namespace, and the pid is gone or is ours under an older nonce),
** "expired" (lease over), or NULL: it is live. */
const char *ghl_claim_stale(const struct claim *c, double now) {
  if (c->samehost && c->pid > 0 &&
      (c->pid == me.pid || (kill((pid_t)c->pid, 0) != 0 && errno == ESRCH)))
    return "dead";
  if (c->lease_until <= now) return "expired";
  return NULL;
}

/* Push {pid=, phase=, started_at=, lease_until= [, reason=]}. */
void ghl_push_claim(lua_State *L, const struct claim *c, const char *reason) {
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, c->pid);
  lua_setfield(L, -2, "pid");
  lua_pushstring(L, c->phase);
  lua_setfield(L, -2, "phase");
  lua_pushnumber(L, c->started_at);
  lua_setfield(L, -2, "started_at");
  lua_pushnumber(L, c->lease_until);
  lua_setfield(L, -2, "lease_until");
  if (reason) {
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
  }
}

/* db:claim(app, resource_id [, lease_seconds=60]) -> true [, prev] |
** false, holder | nil, err.
** true: this process holds the claim until lease_seconds from now. prev is
** nil when the claim was free or already ours in phase "claimed" (a
** re-claim extends the lease); it describes the holder it took over from,
** with reason "dead" or "expired", or our own claim left in another phase
** (reason "own": an earlier attempt of this process never finished). If
** prev.phase is not "claimed", a refresh may have been sent and the token
** may already be rotated. A takeover never downgrades the phase: the claim
** keeps prev.phase unless it was "claimed". false: a live process holds
** it; holder says who.
** The live case is decided without the write lock, so waiters polling a
** busy resource do not slow its holder down. */
static int store_claim(lua_State *L) {
  struct store *s = check_store(L);
  double lease = luaL_optnumber(L, 4, 60), now = ghl_store_now();
  const char *reason = NULL;
  struct claim c;
  sqlite3_stmt *st;
  int pass;
  luaL_argcheck(L, lease > 0 && lease < 1e9, 4, "lease must be a positive number of seconds");
  for (pass = 0; pass < 2; pass++) {   /* look, then look again under the lock */
    if (pass == 1 && begin(s) != SQLITE_OK) return db_fail(L, s);
    if (read_claim(L, s, &c) != SQLITE_OK) return db_fail(L, s);
    if (c.found && !c.mine && (reason = ghl_claim_stale(&c, now)) == NULL) {
      if (pass == 1 && commit(s) != SQLITE_OK) return db_fail(L, s);
      lua_pushboolean(L, 0);
      ghl_push_claim(L, &c, NULL);
      return 2;
    }
  }
  if ((st = stmt_owner(L, s, c.mine ? S_EXTEND_CLAIM : S_PUT_CLAIM)) == NULL) return db_fail(L, s);
  if (c.mine) {
    sqlite3_bind_double(st, 6, now + lease);
  } else {
    sqlite3_bind_double(st, 6, now);
    sqlite3_bind_double(st, 7, now + lease);
  }
  if (run(st) != SQLITE_OK || commit(s) != SQLITE_OK) return db_fail(L, s);
  lua_pushboolean(L, 1);
  if (!c.found || (c.mine && strcmp(c.phase, "claimed") == 0)) return 1;
  ghl_push_claim(L, &c, c.mine ? "own" : reason);
  return 2;
}

/* db:claim_of(app, resource_id) -> nil | {pid=, phase=, started_at=,
** lease_until= [, reason=]}, or nil, err: the claim on (app, resource_id)
** as it stands, without taking or changing it (for `ghlua auth doctor`).
** reason is "own" for this process's claim, "dead" or "expired" for one
** that may be taken over; none for a live holder's. */
static int store_claim_of(lua_State *L) {
  struct store *s = check_store(L);
  struct claim c;
  const char *reason;
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  if (read_claim(L, s, &c) != SQLITE_OK) return db_fail(L, s);
  if (!c.found) {
    lua_pushnil(L);
    return 1;
  }
  reason = c.mine ? "own" : ghl_claim_stale(&c, ghl_store_now());
  ghl_push_claim(L, &c, reason);
  return 1;
}

/* Push nil, ghl.error{kind="claim"} saying what became of the claim on
** (app, resource_id) at stack 2, 3 that this process expected to hold. */
static int claim_lost(lua_State *L, struct store *s) {
  const char *app = lua_tostring(L, 2), *rid = lua_tostring(L, 3);
  struct claim c;
  if (read_claim(L, s, &c) != SQLITE_OK) return db_fail(L, s);
  if (c.mine)
    return ghl_fail(L, "claim", "the refresh claim on %s %s has expired; claim it again", app, rid);
  if (c.found)
    return ghl_fail(L, "claim", "the refresh claim on %s %s is held by pid %d (phase %s), not by this process",
                    app, rid, (int)c.pid, c.phase);
  return ghl_fail(L, "claim", "this process holds no refresh claim on %s %s", app, rid);
}

/* db:claim_phase(app, resource_id, phase) -> true, or nil, err (kind
** "claim" unless this process holds an unexpired claim). Phases are free
** words, e.g. "sending" just before the refresh request goes out. */
static int store_claim_phase(lua_State *L) {
  struct store *s = check_store(L);
  size_t len;
  sqlite3_stmt *st;
  int n = 0;
  luaL_checklstring(L, 4, &len);
  luaL_argcheck(L, len > 0 && len <= MAX_PHASE, 4, "phase must be 1..64 bytes");
  if ((st = stmt_owner(L, s, S_SET_PHASE)) == NULL) return db_fail(L, s);
  bind_str(L, st, 6, 4);
  sqlite3_bind_double(st, 7, ghl_store_now());
  if (write1(s, st, &n) != SQLITE_OK) return db_fail(L, s);
  if (n == 0) return claim_lost(L, s);
  lua_pushboolean(L, 1);
  return 1;
}

/* db:commit_refresh(app, resource_id, fields) -> true, or nil, err.
** One transaction, durable on return: checks this process still holds the
** claim (else kind "claim"; an expired lease nobody took over still
** counts), keeps the current refresh token as previous_refresh_token (with
** previous_refreshed_at = when it was obtained) if fields.refresh_token
** replaces it, writes the given fields (status defaults to "ok", note to
** nil), sets refreshed_at/refreshed_by and deletes the claim. */
static int store_commit_refresh(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *held, *upd, *del;
  int rc;
  ghl_check_fields(L, 4, ghl_refresh_fields, "commit_refresh");
  if ((held = stmt_owner(L, s, S_HELD)) == NULL || (del = stmt_owner(L, s, S_DEL_CLAIM)) == NULL ||
      (upd = stmt(s, S_COMMIT_REFRESH)) == NULL)
    return db_fail(L, s);
  bind_fields(L, 4, upd, ghl_refresh_fields, 1);
  bind_str(L, upd, 13, 2);
  bind_str(L, upd, 14, 3);
  sqlite3_bind_int64(upd, 15, (sqlite3_int64)time(NULL));
  sqlite3_bind_int64(upd, 16, me.pid);
  if (begin(s) != SQLITE_OK) return db_fail(L, s);
  rc = sqlite3_step(held);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(L, s);
  sqlite3_reset(held);
  if (rc == SQLITE_DONE) {
    if (commit(s) != SQLITE_OK) return db_fail(L, s);
    return claim_lost(L, s);
  }
  if (run(upd) != SQLITE_OK) return db_fail(L, s);
  if (sqlite3_changes(s->db) == 0) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (s->tx) s->tx_failed = 1;
    ghl_fail(L, "store", "token store %s has no token for %s %s", s->path,
             lua_tostring(L, 2), lua_tostring(L, 3));
    lua_pushliteral(L, "not_found");
    lua_setfield(L, -2, "code");
    return 2;
  }
  if (run(del) != SQLITE_OK || commit(s) != SQLITE_OK) return db_fail(L, s);
  lua_pushboolean(L, 1);
  return 1;
}

/* db:release(app, resource_id) -> true if this process held the claim and
** it is now gone, else false; or nil, err. */
static int store_release_claim(lua_State *L) {
  struct store *s = check_store(L);
  return push_write(L, s, stmt_owner(L, s, S_DEL_CLAIM), 1);
}

/* ---- Key/value ---- */

/* db:kv_get(ns, key) -> value, updated_at | nil, or nil, err. */
static int store_kv_get(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st = stmt_args(L, s, S_KV_GET, 2);
  int rc;
  if (st == NULL) return db_fail(L, s);
  rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(st);
    lua_pushnil(L);
    return 1;
  }
  if (rc != SQLITE_ROW) return db_fail(L, s);
  lua_pushlstring(L, (const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
  lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, 1));
  sqlite3_reset(st);
  return 2;
}

/* db:kv_put(ns, key, value) -> true, or nil, err. value is a string. */
static int store_kv_put(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st = stmt_args(L, s, S_KV_PUT, 3);
  if (st) sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
  return push_write(L, s, st, 0);
}

/* db:kv_delete(ns, key) -> true if it existed, else false; or nil, err. */
static int store_kv_delete(lua_State *L) {
  struct store *s = check_store(L);
  return push_write(L, s, stmt_args(L, s, S_KV_DEL, 2), 1);
}

/* db:kv_list([ns]) -> array of {ns=, key=, value=, updated_at=} sorted by
** ns, key (every namespace when ns is nil), or nil, err. */
static int store_kv_list(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st;
  luaL_optstring(L, 2, NULL);
  if ((st = stmt(s, S_KV_LIST)) == NULL) return db_fail(L, s);
  bind_str(L, st, 1, 2);
  return push_rows(L, s, st);
}

/* ---- Webhook events ---- */

/* db:put_event{id=, type=, location_id=, company_id=, received_at=, body=,
** headers=, verified=, status=, note=} -> true, false when an event with
** this id is already stored (the de-duplication: nothing is changed), or
** nil, err. body is kept as raw bytes; received_at defaults to now. */
static int store_put_event(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st;
  ghl_check_fields(L, 2, ghl_event_fields, "put_event");
  ghl_check_value(L, 2, "id", 1, NULL, NULL, "put_event");
  ghl_check_value(L, 2, "body", 1, NULL, NULL, "put_event");
  if ((st = stmt(s, S_PUT_EVENT)) != NULL) {
    bind_fields(L, 2, st, ghl_event_fields, 1);
    sqlite3_bind_double(st, 11, ghl_store_now());
  }
  return push_write(L, s, st, 1);
}

/* db:get_event(id) -> event table | nil, or nil, err. */
static int store_get_event(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st = stmt_args(L, s, S_GET_EVENT, 1);
  if (st == NULL) return db_fail(L, s);
  return push_one(L, s, st);
}

/* db:list_events{type=, since=, limit=, location=} -> array of events,
** oldest first: the newest `limit` (default all) of those of this type,
** received at or after `since` (epoch seconds), for this location. Each
** has a field seq, its insertion order. Or nil, err. */
static int store_list_events(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st;
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  ghl_check_fields(L, 2, ghl_list_event_fields, "list_events");
  if ((st = stmt(s, S_LIST_EVENTS)) == NULL) return db_fail(L, s);
  bind_fields(L, 2, st, ghl_list_event_fields, 1);
  return push_rows(L, s, st);
}

/* db:retry_event(id) -> true when the event was stored with status
** "failed" and now is "received" again, attempts one more: the caller may
** run its handler once more (HighLevel redelivers after a 429). false when
** it is missing or not failed (a true duplicate). Or nil, err. Atomic, so
** two processes never both retry one event. */
static int store_retry_event(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st = stmt_args(L, s, S_RETRY_EVENT, 1);
  if (st) sqlite3_bind_double(st, 2, ghl_store_now());
  return push_write(L, s, st, 1);
}

/* db:set_event_status(id, status [, note]) -> true if the event exists,
** else false; or nil, err. */
static int store_set_event_status(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st = stmt_args(L, s, S_SET_EVENT, 2);
  luaL_optstring(L, 4, NULL);
  if (st) {
    bind_str(L, st, 3, 4);
    sqlite3_bind_double(st, 4, ghl_store_now());
  }
  return push_write(L, s, st, 1);
}

/* ---- The handle ---- */

/* db:check() -> true, or nil, err (kind "store", code "corrupt") with
** SQLite's integrity_check findings. */
static int store_check(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st;
  luaL_Buffer b;
  int rc, n = 0;
  if ((st = stmt(s, S_CHECK)) == NULL) return db_fail(L, s);
  luaL_buffinit(L, &b);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *line = (const char *)sqlite3_column_text(st, 0);
    if (line && strcmp(line, "ok") == 0) continue;
    if (n++) luaL_addstring(&b, "; ");
    luaL_addstring(&b, line ? line : "?");
  }
  if (rc != SQLITE_DONE) return db_fail(L, s);
  sqlite3_reset(st);
  luaL_pushresult(&b);
  if (n == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  ghl_fail(L, "store", "token store %s failed its integrity check: %s", s->path, lua_tostring(L, -1));
  lua_pushliteral(L, "corrupt");
  lua_setfield(L, -2, "code");
  return 2;
}

/* db:transaction(fn) -> what fn(db) returns (true when nothing), or nil,
** err. Runs fn with one write transaction open (BEGIN IMMEDIATE), so every
** method called on db inside it joins it: all of it is committed, durably,
** or none. A raise in fn rolls back and is raised again; fn returning nil,
** err, or any write in it failing (its method returned nil, err), rolls
** back and returns nil, err. Hold it briefly: other processes wait for it.
** Transactions do not nest. */
static int store_transaction(lua_State *L) {
  struct store *s = check_store(L);
  int rc, n;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (s->tx) return luaL_error(L, "store transactions do not nest");
  lua_settop(L, 2);
  if (begin(s) != SQLITE_OK) return db_fail(L, s);
  s->tx = 1;
  s->tx_failed = 0;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  rc = lua_pcall(L, 1, LUA_MULTRET, 0);   /* stack: db, fn, results... */
  s->tx = 0;
  if (s->db == NULL) return luaL_error(L, "the store was closed inside its transaction");
  n = lua_gettop(L) - 2;
  if (rc != LUA_OK || s->tx_failed || (n >= 1 && lua_isnil(L, 3))) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != LUA_OK) return lua_error(L);
    if (n >= 2 && lua_isnil(L, 3)) {   /* fn's own nil, err */
      lua_settop(L, 4);
      return 2;
    }
    return ghl_fail(L, "store", "token store %s: a write failed inside a transaction; nothing of it was"
                    " written", s->path);
  }
  if (commit(s) != SQLITE_OK) return db_fail(L, s);
  if (n == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return n;
}

/* db:schema() -> the schema version of the store (PRAGMA user_version). */
static int store_schema(lua_State *L) {
  struct store *s = check_store(L);
  long app_id, version, tables;
  if (read_schema(s->db, &app_id, &version, &tables) != SQLITE_OK) return db_fail(L, s);
  lua_pushinteger(L, version);
  return 1;
}

/* db:engine() -> "sqlite" (the PostgreSQL store says "postgresql"). */
static int store_engine(lua_State *L) {
  luaL_checkudata(L, 1, STORE_MT);
  lua_pushliteral(L, "sqlite");
  return 1;
}

/* db:data_version() -> an integer that differs from the last call's
** whenever the store changed since: committed by another connection (PRAGMA
** data_version, which starts a read and so sees the other processes'
** commits) or by this one (sqlite3_total_changes64, which data_version
** leaves out). Equal values mean nothing was written in between, so a
** record read then can be used again without reading it. Cheap: one
** prepared statement, no table read. */
static int store_data_version(lua_State *L) {
  struct store *s = check_store(L);
  sqlite3_stmt *st = stmt(s, S_DATA_VERSION);
  sqlite3_int64 v;
  if (st == NULL || sqlite3_step(st) != SQLITE_ROW) return db_fail(L, s);
  v = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  lua_pushinteger(L, (lua_Integer)(v + sqlite3_total_changes64(s->db)));
  return 1;
}

/* db:close(), __gc, __close: idempotent. */
static int store_close(lua_State *L) {
  store_release(luaL_checkudata(L, 1, STORE_MT));
  return 0;
}

/* __index: db.path, then the methods (upvalue 1). */
static int store_index(lua_State *L) {
  struct store *s = luaL_checkudata(L, 1, STORE_MT);
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "path") == 0) {
    lua_pushstring(L, s->path);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

/* __tostring: "ghl.store: PATH", plus " (closed)". */
static int store_tostring(lua_State *L) {
  struct store *s = luaL_checkudata(L, 1, STORE_MT);
  lua_pushfstring(L, "ghl.store: %s%s", s->path, s->db ? "" : " (closed)");
  return 1;
}

static const luaL_Reg store_methods[] = {
  {"put_app", store_put_app},
  {"get_app", store_get_app},
  {"list_apps", store_list_apps},
  {"remove_app", store_remove_app},
  {"put_token", store_put_token},
  {"get_token", store_get_token},
  {"find_tokens", store_find_tokens},
  {"delete_token", store_delete_token},
  {"set_status", store_set_status},
  {"claim", store_claim},
  {"claim_phase", store_claim_phase},
  {"claim_of", store_claim_of},
  {"commit_refresh", store_commit_refresh},
  {"release", store_release_claim},
  {"kv_get", store_kv_get},
  {"kv_put", store_kv_put},
  {"kv_delete", store_kv_delete},
  {"put_event", store_put_event},
  {"get_event", store_get_event},
  {"list_events", store_list_events},
  {"retry_event", store_retry_event},
  {"set_event_status", store_set_event_status},
  {"check", store_check},
  {"kv_list", store_kv_list},
  {"transaction", store_transaction},
  {"schema", store_schema},
  {"engine", store_engine},
  {"data_version", store_data_version},
  {"close", store_close},
  {NULL, NULL}
};

static const luaL_Reg store_funcs[] = {
  {"open", store_open},
  {"default_path", store_default_path},
  {NULL, NULL}
};

int luaopen_ghl_store(lua_State *L) {
  ghl_store_init_me();
  ghl_store_pg_init(L);
  luaL_newmetatable(L, STORE_MT);
  lua_pushcfunction(L, store_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, store_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, store_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, store_methods);
  lua_pushcclosure(L, store_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, store_funcs);
  return 1;
}
