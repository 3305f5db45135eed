/*
** ghl.store on PostgreSQL: one token store shared by a fleet of machines.
** store.open(CONNINFO) comes here when CONNINFO is a postgresql:// or
** postgres:// URI or libpq key=value pairs (GHLUA_STORE, --store); the
** handle has the SQLite store's methods, arguments, results, errors and
** claim phases (store.c is the reference; its field lists and claim rules
** are shared through store.h), plus db:engine() -> "postgresql".
**
** Layout: the tables live in their own schema, "ghlua", so a database
** shared with other programs is fine; ghlua.schema_version holds the
** schema version (2, as SQLite's user_version). Tables are created with
** CREATE ... IF NOT EXISTS under an advisory lock, so any number of
** processes may open a new store at once.
**
** Concurrency: every method is one short transaction and none stays open
** between calls; no lock is ever held while Lua does HTTP. A claim is
** taken under pg_advisory_xact_lock for its (app, resource_id) plus a row
** lock on the claim, inside a transaction of a few statements; phases are
** kept across takeovers as on SQLite. synchronous_commit is on for the
** session and again (SET LOCAL) for the commit of a rotated pair.
** Serialization failures and deadlocks (40001, 40P01) are retried a few
** times inside the store.
**
** The server going away: a call that finds the connection broken
** reconnects once and runs again when that is safe (a read, an idempotent
** write, a transaction that certainly did not commit). When the connection
** is lost while a COMMIT whose outcome matters is under way, the outcome is
** unknown: the call returns nil, err{kind="store", code="uncertain"} and
** never retries. For commit_refresh the claim then stays in phase
** "sending" if the commit did not happen, and the next user of the token
** takes the recovery path (the refresh token may be spent).
**
** Messages name the store by its connection string with any password
** removed (db.path is that string); they are one line. Expected failures
** return nil, ghl.error (kind "store" or "claim"); misuse raises.
**
** Ownership: the PGconn and the last PGresult belong to the userdata, so
** a raise (a misuse check, out of memory) never leaks them: the result is
** cleared before the next query, on close and by __gc.
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <libpq-fe.h>

#include "error.h"
#include "lib_pq.h"
#include "store.h"

#define PG_MT "ghl.store.pg"
#define SCHEMA_VERSION 3
#define LOCK_SCHEMA 0x67686C61      /* advisory lock key while migrating: "ghla" */
#define MAXP 24                     /* parameters of the largest statement */
#define RETRIES 5                   /* serialization failures / deadlocks */

/* TIMEOUTS: a server that vanishes from the network (no FIN, no RST) must
** not hang a call forever. Each is a default the connection string
** overrides (libpq keywords; options=-c NAME=VALUE or PGOPTIONS for the
** server's). Over TCP, an idle connection is probed after 10 s, every 5 s,
** and dropped after 3 unanswered probes (~25 s); data left unacknowledged
** for 30 s drops it too (tcp_user_timeout, Linux); connecting gives up
** after 10 s. On the server, a statement is cancelled after 30 s (every
** statement of ours is short: waiting longer means something is wrong),
** and a session idle inside a transaction for 60 s is ended, so a client
** that stopped mid-transaction does not keep its locks. Unix sockets have
** no keepalives; the server-side timeouts apply to them too. */
#define CONNECT_TIMEOUT "10"
#define KEEPALIVES_IDLE "10"
#define KEEPALIVES_INTERVAL "5"
#define KEEPALIVES_COUNT "3"
#define TCP_USER_TIMEOUT "30000"    /* ms */
#define STATEMENT_TIMEOUT "30s"
#define IDLE_TX_TIMEOUT "60s"

/* ---- Schema ---- */

static const char schema_v1[] =
  "CREATE TABLE IF NOT EXISTS ghlua.apps("
  " name text PRIMARY KEY, client_id text NOT NULL, client_secret text,"
  " redirect_uri text, scopes text, whitelabel boolean NOT NULL DEFAULT false,"
  " user_type text, created_at float8 NOT NULL, updated_at float8 NOT NULL);"
  "CREATE TABLE IF NOT EXISTS ghlua.tokens("
  " app text NOT NULL, resource_id text NOT NULL, resource_type text NOT NULL,"
  " kind text NOT NULL, access_token text, refresh_token text, expires_at float8,"
  " scope text, requested_scope text, company_id text, location_id text,"
  " user_id text, user_type text, name text, status text NOT NULL, note text,"
  " created_at float8 NOT NULL, refreshed_at float8, refreshed_by bigint,"
  " previous_refresh_token text, previous_refreshed_at float8,"
  " PRIMARY KEY(app, resource_id));"
  "CREATE INDEX IF NOT EXISTS tokens_resource ON ghlua.tokens(resource_id);"
  "CREATE TABLE IF NOT EXISTS ghlua.claims("
  " app text NOT NULL, resource_id text NOT NULL, pid bigint NOT NULL,"
  " host text NOT NULL, nonce bigint NOT NULL, phase text NOT NULL,"
  " started_at float8 NOT NULL, lease_until float8 NOT NULL,"
  " PRIMARY KEY(app, resource_id));"
  "CREATE TABLE IF NOT EXISTS ghlua.kv("
  " ns text NOT NULL, key text NOT NULL, value bytea NOT NULL,"
  " updated_at float8 NOT NULL, PRIMARY KEY(ns, key));";

/* Schema 2: webhook events (see store.c). verified is 'true', 'false' or
** another word ('simulator'), read back as a boolean or that string; seq
** is the insertion order list_events reports. */
static const char schema_v2[] =
  "CREATE TABLE IF NOT EXISTS ghlua.events("
  " seq bigserial NOT NULL, id text PRIMARY KEY, type text, location_id text,"
  " company_id text, received_at float8 NOT NULL, body bytea NOT NULL, headers text,"
  " verified text NOT NULL DEFAULT 'false', status text NOT NULL DEFAULT 'received',"
  " note text, attempts integer NOT NULL DEFAULT 1, updated_at float8);"
  "CREATE INDEX IF NOT EXISTS events_received ON ghlua.events(received_at);";

/* Schema 3: a change counter for data_version(). One row, bumped by a
** statement trigger in every transaction that writes apps, tokens or kv,
** so it commits (or rolls back) with the write; reads leave it alone.
** (A transaction id or a WAL position is no counter: pg_snapshot_xmax
** does not move when an older transaction commits after a newer one.) */
static const char schema_v3[] =
  "CREATE TABLE IF NOT EXISTS ghlua.meta(version bigint NOT NULL);"
  "INSERT INTO ghlua.meta SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM ghlua.meta);"
  "CREATE OR REPLACE FUNCTION ghlua.bump() RETURNS trigger LANGUAGE plpgsql AS"
  " $$BEGIN UPDATE ghlua.meta SET version = version + 1; RETURN NULL; END$$;"
  "CREATE OR REPLACE TRIGGER bump AFTER INSERT OR UPDATE OR DELETE ON ghlua.apps"
  " FOR EACH STATEMENT EXECUTE FUNCTION ghlua.bump();"
  "CREATE OR REPLACE TRIGGER bump AFTER INSERT OR UPDATE OR DELETE ON ghlua.tokens"
  " FOR EACH STATEMENT EXECUTE FUNCTION ghlua.bump();"
  "CREATE OR REPLACE TRIGGER bump AFTER INSERT OR UPDATE OR DELETE ON ghlua.kv"
  " FOR EACH STATEMENT EXECUTE FUNCTION ghlua.bump();";

/* ---- Statements ---- */

/* Claim statements share $1 app, $2 resource_id and the owner $3 pid,
** $4 host, $5 nonce (see p_owner). */
#define OWNER "app = $1::text AND resource_id = $2::text AND pid = $3::bigint" \
  " AND host = $4::text AND nonce = $5::bigint"
#define EVENT_COLS "id, type, location_id, company_id, received_at, body, headers, verified," \
  " status, note, attempts, updated_at"

static const char SQL_PUT_APP[] =
  "INSERT INTO ghlua.apps AS a(name, client_id, client_secret, redirect_uri, scopes, whitelabel,"
  " user_type, created_at, updated_at) VALUES($1::text, $2::text, $3::text, $4::text, $5::text,"
  " COALESCE($6::boolean, false), $7::text, $8::float8, $8::float8) ON CONFLICT(name) DO UPDATE SET"
  " client_id = EXCLUDED.client_id, client_secret = EXCLUDED.client_secret,"
  " redirect_uri = EXCLUDED.redirect_uri, scopes = EXCLUDED.scopes,"
  " whitelabel = EXCLUDED.whitelabel, user_type = EXCLUDED.user_type, updated_at = EXCLUDED.updated_at";
static const char SQL_GET_APP[] = "SELECT * FROM ghlua.apps WHERE name = $1::text";
static const char SQL_LIST_APPS[] = "SELECT * FROM ghlua.apps ORDER BY name COLLATE \"C\"";
static const char SQL_DEL_APP[] =
  "WITH a AS (DELETE FROM ghlua.apps WHERE name = $1::text RETURNING 1),"
  " t AS (DELETE FROM ghlua.tokens WHERE app = $1::text RETURNING 1),"
  " c AS (DELETE FROM ghlua.claims WHERE app = $1::text RETURNING 1)"
  " SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM t), (SELECT count(*) FROM c)";
static const char SQL_PUT_TOKEN[] =
  "INSERT INTO ghlua.tokens AS t(app, resource_id, resource_type, kind, access_token, refresh_token,"
  " expires_at, scope, requested_scope, company_id, location_id, user_id, user_type, name, status,"
  " note, created_at, refreshed_at, refreshed_by, previous_refresh_token, previous_refreshed_at)"
  " VALUES($1::text, $2::text, $3::text, COALESCE($4::text, 'oauth'), $5::text, $6::text,"
  " $7::float8, $8::text, $9::text, $10::text, $11::text, $12::text, $13::text, $14::text,"
  " COALESCE($15::text, 'ok'), $16::text, COALESCE($17::float8, $22::float8), $18::float8,"
  " $19::bigint, $20::text, $21::float8) ON CONFLICT(app, resource_id) DO UPDATE SET"
  " resource_type = EXCLUDED.resource_type, kind = EXCLUDED.kind,"
  " access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token,"
  " expires_at = EXCLUDED.expires_at, scope = EXCLUDED.scope,"
  " requested_scope = EXCLUDED.requested_scope, company_id = EXCLUDED.company_id,"
  " location_id = EXCLUDED.location_id, user_id = EXCLUDED.user_id,"
  " user_type = EXCLUDED.user_type, name = EXCLUDED.name, status = EXCLUDED.status,"
  " note = EXCLUDED.note, created_at = COALESCE($17::float8, t.created_at),"
  " refreshed_at = EXCLUDED.refreshed_at, refreshed_by = EXCLUDED.refreshed_by,"
  " previous_refresh_token = EXCLUDED.previous_refresh_token,"
  " previous_refreshed_at = EXCLUDED.previous_refreshed_at";
static const char SQL_GET_TOKEN[] =
  "SELECT * FROM ghlua.tokens WHERE app = $1::text AND resource_id = $2::text";
static const char SQL_FIND_TOKENS[] =
  "SELECT * FROM ghlua.tokens WHERE ($1::text IS NULL OR app = $1::text)"
  " AND ($2::text IS NULL OR (resource_type = 'Location' AND resource_id = $2::text))"
  " AND ($3::text IS NULL OR (resource_type = 'Company' AND resource_id = $3::text))"
  " AND ($4::text IS NULL OR resource_id = $4::text) AND ($5::text IS NULL OR kind = $5::text)"
  " ORDER BY app COLLATE \"C\", resource_id COLLATE \"C\"";
static const char SQL_DEL_TOKEN[] =
  "WITH t AS (DELETE FROM ghlua.tokens WHERE app = $1::text AND resource_id = $2::text RETURNING 1),"
  " c AS (DELETE FROM ghlua.claims WHERE app = $1::text AND resource_id = $2::text RETURNING 1)"
  " SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM c)";
static const char SQL_SET_STATUS[] =
  "UPDATE ghlua.tokens SET status = $3::text, note = $4::text"
  " WHERE app = $1::text AND resource_id = $2::text";
static const char SQL_CLAIM_LOCK[] =
  "SELECT pg_advisory_xact_lock(hashtextextended($1::text || ' ' || $2::text, 1195593825))";
static const char SQL_GET_CLAIM[] =
  "SELECT pid, phase, started_at, lease_until, host = $4::text,"
  " pid = $3::bigint AND host = $4::text AND nonce = $5::bigint"
  " FROM ghlua.claims WHERE app = $1::text AND resource_id = $2::text";
static const char SQL_GET_CLAIM_LOCKED[] =
  "SELECT pid, phase, started_at, lease_until, host = $4::text,"
  " pid = $3::bigint AND host = $4::text AND nonce = $5::bigint"
  " FROM ghlua.claims WHERE app = $1::text AND resource_id = $2::text FOR UPDATE";
/* A takeover keeps the phase of the claim it replaces (a fresh one is
** 'claimed'): "may have been sent" survives any number of owners dying. */
static const char SQL_PUT_CLAIM[] =
  "INSERT INTO ghlua.claims AS c(app, resource_id, pid, host, nonce, phase, started_at, lease_until)"
  " VALUES($1::text, $2::text, $3::bigint, $4::text, $5::bigint, 'claimed', $6::float8, $7::float8)"
  " ON CONFLICT(app, resource_id) DO UPDATE SET pid = EXCLUDED.pid, host = EXCLUDED.host,"
  " nonce = EXCLUDED.nonce, phase = c.phase, started_at = EXCLUDED.started_at,"
  " lease_until = EXCLUDED.lease_until";
static const char SQL_EXTEND_CLAIM[] =
  "UPDATE ghlua.claims SET lease_until = $6::float8 WHERE " OWNER;
static const char SQL_SET_PHASE[] =
  "UPDATE ghlua.claims SET phase = $6::text WHERE " OWNER " AND lease_until > $7::float8";
static const char SQL_HELD[] = "SELECT 1 FROM ghlua.claims WHERE " OWNER " FOR UPDATE";
static const char SQL_DEL_CLAIM[] = "DELETE FROM ghlua.claims WHERE " OWNER;
/* SET expressions see the old row: the rotation reads the old values. */
static const char SQL_COMMIT_REFRESH[] =
  "UPDATE ghlua.tokens SET"
  " previous_refresh_token = CASE WHEN $2::text IS NOT NULL AND $2::text IS DISTINCT FROM"
  "   refresh_token THEN refresh_token ELSE previous_refresh_token END,"
  " previous_refreshed_at = CASE WHEN $2::text IS NOT NULL AND $2::text IS DISTINCT FROM"
  "   refresh_token THEN COALESCE(refreshed_at, created_at, $15::float8) ELSE previous_refreshed_at END,"
  " access_token = COALESCE($1::text, access_token), refresh_token = COALESCE($2::text, refresh_token),"
  " expires_at = COALESCE($3::float8, expires_at), scope = COALESCE($4::text, scope),"
  " requested_scope = COALESCE($5::text, requested_scope), company_id = COALESCE($6::text, company_id),"
  " location_id = COALESCE($7::text, location_id), user_id = COALESCE($8::text, user_id),"
  " user_type = COALESCE($9::text, user_type), name = COALESCE($10::text, name),"
  " status = COALESCE($11::text, 'ok'), note = $12::text, refreshed_at = $15::float8,"
  " refreshed_by = $16::bigint WHERE app = $13::text AND resource_id = $14::text";
static const char SQL_KV_GET[] =
  "SELECT value, updated_at FROM ghlua.kv WHERE ns = $1::text AND key = $2::text";
static const char SQL_KV_PUT[] =
  "INSERT INTO ghlua.kv(ns, key, value, updated_at) VALUES($1::text, $2::text, $3::bytea, $4::float8)"
  " ON CONFLICT(ns, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at";
static const char SQL_KV_DEL[] = "DELETE FROM ghlua.kv WHERE ns = $1::text AND key = $2::text";
static const char SQL_KV_LIST[] =
  "SELECT ns, key, value, updated_at FROM ghlua.kv WHERE ($1::text IS NULL OR ns = $1::text)"
  " ORDER BY ns COLLATE \"C\", key COLLATE \"C\"";
static const char SQL_PUT_EVENT[] =
  "INSERT INTO ghlua.events(" EVENT_COLS ") VALUES($1::text, $2::text, $3::text, $4::text,"
  " COALESCE($5::float8, $11::float8), $6::bytea, $7::text, COALESCE($8::text, 'false'),"
  " COALESCE($9::text, 'received'), $10::text, 1, $11::float8) ON CONFLICT(id) DO NOTHING";
static const char SQL_GET_EVENT[] = "SELECT " EVENT_COLS " FROM ghlua.events WHERE id = $1::text";
/* the newest $3 (all when NULL) matching, oldest first */
static const char SQL_LIST_EVENTS[] =
  "SELECT * FROM (SELECT seq, " EVENT_COLS " FROM ghlua.events"
  " WHERE ($1::text IS NULL OR type = $1::text) AND ($2::float8 IS NULL OR received_at >= $2::float8)"
  " AND ($4::text IS NULL OR location_id = $4::text)"
  " ORDER BY received_at DESC, seq DESC LIMIT $3::bigint) e ORDER BY received_at, seq";
static const char SQL_RETRY_EVENT[] =
  "UPDATE ghlua.events SET status = 'received', note = NULL, attempts = attempts + 1,"
  " updated_at = $2::float8 WHERE id = $1::text AND status = 'failed'";
static const char SQL_SET_EVENT[] =
  "UPDATE ghlua.events SET status = $2::text, note = $3::text, updated_at = $4::float8"
  " WHERE id = $1::text";
static const char SQL_CHECK[] =
  "SELECT (SELECT max(version) FROM ghlua.schema_version),"
  " (SELECT count(*) FROM pg_tables WHERE schemaname = 'ghlua' AND tablename IN"
  " ('apps', 'tokens', 'claims', 'kv', 'events', 'schema_version', 'meta'))";

/* ---- The userdata ---- */

enum { F_NONE, F_SQL, F_CONN, F_RETRY };   /* what the last failed query met */

struct pg {
  PGconn *conn;          /* NULL when closed */
  PGresult *res;         /* the last result, owned here; cleared before the next query */
  int fail;              /* F_* of the last failure */
  int committing;        /* a COMMIT whose outcome matters is under way */
  int reconnected;       /* this call reconnected already */
  int tx, tx_failed;     /* inside db:transaction; a statement in it failed */
  char msg[512];         /* the last failure, one line */
  char sqlstate[6];
  char path[];           /* the connection string without its password */
};

static struct pg *check_pg(lua_State *L) {
  struct pg *s = luaL_checkudata(L, 1, PG_MT);
  if (s->conn == NULL) luaL_error(L, "attempt to use a closed store");
  return s;
}

static void clear_res(struct pg *s) {
  if (s->res) PQclear(s->res);
  s->res = NULL;
}

/* Close the connection and free the result. Idempotent; close, __gc and
** __close. A transaction left open by a raise ends with the connection. */
static void pg_release(struct pg *s) {
  clear_res(s);
  if (s->conn) PQfinish(s->conn);
  s->conn = NULL;
}

/* libpq prints NOTICEs on stderr by default (CREATE ... IF NOT EXISTS
** makes some): say nothing. */
static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Copy text into s->msg as one line: the first line of a libpq message,
** without "ERROR:  " / "FATAL:  " and trailing blanks. */
static void set_msg(struct pg *s, const char *text) {
  size_t n;
  if (text == NULL || *text == '\0') text = "unknown error";
  if (strncmp(text, "ERROR:  ", 8) == 0 || strncmp(text, "FATAL:  ", 8) == 0) text += 8;
  n = strcspn(text, "\n");
  while (n > 0 && isspace((unsigned char)text[n - 1])) n--;
  if (n >= sizeof s->msg) n = sizeof s->msg - 1;
  memcpy(s->msg, text, n);
  s->msg[n] = '\0';
}

/* ---- Connection strings ---- */

/* Is keyword one of libpq's connection keywords? */
static int pq_keyword(const char *kw, size_t n) {
  PQconninfoOption *opts = PQconndefaults(), *o;
  int found = 0;
  if (opts == NULL) return 0;
  for (o = opts; o->keyword; o++)
    if (strlen(o->keyword) == n && strncmp(o->keyword, kw, n) == 0) found = 1;
  PQconninfoFree(opts);
  return found;
}

int ghl_store_pg_is_conninfo(const char *path) {
  const char *p = path;
  size_t n;
  if (strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0) return 1;
  while (*p == ' ') p++;
  n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
  if (n == 0) return 0;
  path = p;
  p += n;
  while (*p == ' ') p++;
  /* without libpq, a keyword=value string is taken for one, and opening it
     says libpq is missing (a file store so named is reached as ./NAME) */
  return *p == '=' && (!ghl_lib_load(&ghl_pq_lib) || pq_keyword(path, n));
}

/* Is the URI query key k (n bytes, percent-encoded as libpq decodes it)
** password or sslpassword? */
static int secret_key(const char *k, size_t n) {
  char d[16];
  size_t i, m = 0;
  for (i = 0; i < n; i++) {
    if (m == sizeof d) return 0;
    if (k[i] == '%' && i + 2 < n && isxdigit((unsigned char)k[i + 1]) && isxdigit((unsigned char)k[i + 2])) {
      char h[3] = {k[i + 1], k[i + 2], 0};
      d[m++] = (char)strtol(h, NULL, 16);
      i += 2;
    } else if (k[i] == '%') {
      return 1; /* undecodable: libpq refuses it; hide it anyway */
    } else {
      d[m++] = k[i];
    }
  }
  return (m == 8 && memcmp(d, "password", 8) == 0) || (m == 11 && memcmp(d, "sslpassword", 11) == 0);
}

/* Append to b the connection string without its password: the userinfo's
** ":password" of a URI and any password= / sslpassword= parameter, as a
** URI query parameter (key percent-decoded, as libpq does) or a key=value
** pair. libpq ends the userinfo at the first '@' before any '/' and takes
** '?' as part of it; a password with an unencoded '@' or '/' is hidden up
** to the last '@' of the authority (or of the path when a ':' comes before
** the first '/'): more may be hidden than libpq would use, never less.
** Without a ':' before that '@' there is no password to hide there.
** Returns 1 when that '@' is not libpq's (the first '@' before any '/'):
** libpq would take part of the password as host or port, and quote it in
** its messages. */
static int add_sanitized(luaL_Buffer *b, const char *ci) {
  if (strncmp(ci, "postgres", 8) == 0 && strstr(ci, "://")) {
    const char *auth = strstr(ci, "://") + 3;
    const char *slash = auth + strcspn(auth, "/");
    const char *colon = auth + strcspn(auth, ":/?");
    const char *at = NULL, *end, *p, *q;
    int odd;
    for (p = auth; p < slash; p++) if (*p == '@') at = p;
    if (at == NULL && *colon == ':' && *slash == '/')
      for (p = slash; *p && *p != '?'; p++) if (*p == '@') at = p;
    if (at && memchr(auth, ':', (size_t)(at - auth)) == NULL) at = NULL; /* no password */
    luaL_addlstring(b, ci, (size_t)(auth - ci));
    odd = at != NULL && auth[strcspn(auth, "@/")] == '/';
    for (p = auth; at && p < at; p++) if (*p == '@') odd = 1;
    if (at) {
      const char *u = auth + strcspn(auth, ":@?");
      luaL_addlstring(b, auth, (size_t)((u < at ? u : at) - auth));
      auth = at;
    }
    end = auth + strcspn(auth, "/?");
    luaL_addlstring(b, auth, (size_t)(end - auth));
    p = end;
    if (*p != '?') {
      q = p + strcspn(p, "?");
      luaL_addlstring(b, p, (size_t)(q - p));
      p = q;
    }
    if (*p == '?') {
      int first = 1;
      p++;
      while (*p) {
        size_t n = strcspn(p, "&");
        if (!secret_key(p, strcspn(p, "=&"))) {
          luaL_addchar(b, first ? '?' : '&');
          luaL_addlstring(b, p, n);
          first = 0;
        }
        p += n;
        if (*p == '&') p++;
      }
    }
    return odd;
  }
  /* key = value pairs; values may be 'quoted' with \ escapes */
  {
    const char *p = ci;
    int first = 1;
    while (*p) {
      const char *start, *vstart;
      size_t klen;
      while (isspace((unsigned char)*p)) p++;
      if (*p == '\0') break;
      start = p;
      while (*p && *p != '=' && !isspace((unsigned char)*p)) p++;
      klen = (size_t)(p - start);
      while (isspace((unsigned char)*p)) p++;
      if (*p == '=') p++;
      while (isspace((unsigned char)*p)) p++;
      vstart = p;
      if (*p == '\'') {
        for (p++; *p && *p != '\''; p++) if (*p == '\\' && p[1]) p++;
        if (*p) p++;
      } else {
        while (*p && !isspace((unsigned char)*p)) p++;
      }
      if ((klen == 8 && strncmp(start, "password", 8) == 0) ||
          (klen == 11 && strncmp(start, "sslpassword", 11) == 0))
        continue;
      if (!first) luaL_addchar(b, ' ');
      luaL_addlstring(b, start, klen);
      luaL_addchar(b, '=');
      luaL_addlstring(b, vstart, (size_t)(p - vstart));
      first = 0;
    }
  }
  return 0;
}

/* ---- Queries ---- */

/* Parameters of one statement. Strings point into Lua values that stay
** referenced (stack slots, fields of a table on the stack) until the query
** ran; numbers are formatted into buf. Lua strings go in binary format
** (their length is explicit: bytes are kept as they are), the rest as
** text. */
struct params {
  int n;
  const char *val[MAXP];
  int len[MAXP], fmt[MAXP];
  char buf[MAXP][32];
};

static void p_null(struct params *p) {
  p->val[p->n] = NULL;
  p->len[p->n] = p->fmt[p->n] = 0;
  p->n++;
}

static void p_text(struct params *p, const char *v) {
  p->val[p->n] = v;
  p->len[p->n] = p->fmt[p->n] = 0;
  p->n++;
}

static void p_int(struct params *p, long long v) {
  snprintf(p->buf[p->n], sizeof p->buf[0], "%lld", v);
  p_text(p, p->buf[p->n]);
}

static void p_num(struct params *p, double v) {
  snprintf(p->buf[p->n], sizeof p->buf[0], "%.17g", v);
  p_text(p, p->buf[p->n]);
}

/* The Lua value at idx: nil -> NULL, boolean -> true/false, number,
** string (binary). */
static void p_value(lua_State *L, struct params *p, int idx) {
  size_t len;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: case LUA_TNONE: p_null(p); break;
    case LUA_TBOOLEAN: p_text(p, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) p_int(p, (long long)lua_tointeger(L, idx));
      else p_num(p, lua_tonumber(L, idx));
      break;
    default:
      p->val[p->n] = lua_tolstring(L, idx, &len);
      p->len[p->n] = (int)len;
      p->fmt[p->n] = 1;
      p->n++;
  }
}

/* The fields of the table at idx, in order (checked by ghl_check_fields):
** the strings stay referenced by the table. */
static void p_fields(lua_State *L, struct params *p, int idx, const struct field *fields) {
  int i;
  for (i = 0; fields[i].name; i++) {
    lua_getfield(L, idx, fields[i].name);
    p_value(L, p, -1);
    lua_pop(L, 1);
  }
}

/* $1 app, $2 resource_id (stack 2, 3) and this process as owner. */
static void p_owner(lua_State *L, struct params *p) {
  ghl_store_init_me();
  p_value(L, p, 2);
  p_value(L, p, 3);
  p_int(p, (long long)ghl_store_me.pid);
  p_text(p, ghl_store_me.host);
  p_int(p, ghl_store_me.nonce);
}

/* Run sql with p (or none); the result is s->res. Returns 1, or 0 with
** s->fail, s->msg and s->sqlstate set. */
static int q(struct pg *s, const char *sql, const struct params *p) {
  ExecStatusType st;
  const char *state;
  clear_res(s);
  s->res = p ? PQexecParams(s->conn, sql, p->n, NULL, p->val, p->len, p->fmt, 0)
             : PQexec(s->conn, sql);
  st = s->res ? PQresultStatus(s->res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return 1;
  state = s->res ? PQresultErrorField(s->res, PG_DIAG_SQLSTATE) : NULL;
  snprintf(s->sqlstate, sizeof s->sqlstate, "%s", state ? state : "");
  set_msg(s, s->res && PQresultErrorMessage(s->res)[0] ? PQresultErrorMessage(s->res)
                                                       : PQerrorMessage(s->conn));
  if (PQstatus(s->conn) == CONNECTION_BAD || strncmp(s->sqlstate, "08", 2) == 0 ||
      strncmp(s->sqlstate, "57P", 3) == 0)
    s->fail = F_CONN;
  else if (strcmp(s->sqlstate, "40001") == 0 || strcmp(s->sqlstate, "40P01") == 0)
    s->fail = F_RETRY;
  else
    s->fail = F_SQL;
  return 0;
}

/* Rows affected by the last command. */
static int changes(struct pg *s) {
  return atoi(PQcmdTuples(s->res));
}

/* BEGIN, or nothing inside db:transaction (the methods join it). */
static int begin(struct pg *s) {
  return s->tx ? 1 : q(s, "BEGIN", NULL);
}

/* Roll back after a failure inside a transaction (nothing to do when the
** connection is gone: the server rolls it back). Inside db:transaction the
** whole transaction is marked failed: db:transaction rolls it back. */
static void rollback(struct pg *s) {
  if (s->tx) {
    s->tx_failed = 1;
    return;
  }
  if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
    PGresult *r = PQexec(s->conn, "ROLLBACK");
    PQclear(r);
  }
}

/* COMMIT; when outcome_matters, a connection lost now leaves the outcome
** unknown (see run). */
static int commit(struct pg *s, int outcome_matters) {
  int ok;
  if (s->tx) return 1;              /* db:transaction commits */
  s->committing = outcome_matters;
  ok = q(s, "COMMIT", NULL);
  if (ok) s->committing = 0;
  return ok;
}

/* ---- Lua values from results ---- */

#define BOOLOID 16
#define BYTEAOID 17
#define INT8OID 20
#define INT2OID 21
#define INT4OID 23
#define FLOAT4OID 700
#define FLOAT8OID 701
#define NUMERICOID 1700

static int hexval(char c) {
  return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Push field (row, col) of s->res as SQLite's store would give it: bool as
** boolean, integers as integers, floats with no fraction as integers (as
** SQLite's NUMERIC), bytea as raw bytes, the text 'verified' column as a
** boolean when it is 'true'/'false'. Stack: +1. */
static void push_field(lua_State *L, struct pg *s, int row, int col) {
  const char *v = PQgetvalue(s->res, row, col);
  int len = PQgetlength(s->res, row, col);
  switch (PQftype(s->res, col)) {
    case BOOLOID: lua_pushboolean(L, v[0] == 't'); break;
    case INT2OID: case INT4OID: case INT8OID:
      lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
      break;
    case FLOAT4OID: case FLOAT8OID: case NUMERICOID: {
      double d = strtod(v, NULL);
      if (d == (double)(long long)d && d > -9007199254740992.0 && d < 9007199254740992.0)
        lua_pushinteger(L, (lua_Integer)d);
      else
        lua_pushnumber(L, d);
      break;
    }
    case BYTEAOID: {
      luaL_Buffer b;
      int i;
      luaL_buffinit(L, &b);
      if (len >= 2 && v[0] == '\\' && v[1] == 'x')
        for (i = 2; i + 1 < len; i += 2)
          luaL_addchar(&b, (char)(hexval(v[i]) * 16 + hexval(v[i + 1])));
      luaL_pushresult(&b);
      break;
    }
    default:
      if (strcmp(PQfname(s->res, col), "verified") == 0 &&
          (strcmp(v, "true") == 0 || strcmp(v, "false") == 0))
        lua_pushboolean(L, v[0] == 't');
      else
        lua_pushlstring(L, v, (size_t)len);
  }
}

/* Push row of s->res as a table keyed by column name, NULLs left out. */
static void push_row(lua_State *L, struct pg *s, int row) {
  int i, n = PQnfields(s->res);
  lua_createtable(L, 0, n);
  for (i = 0; i < n; i++) {
    if (PQgetisnull(s->res, row, i)) continue;
    push_field(L, s, row, i);
    lua_setfield(L, -2, PQfname(s->res, i));
  }
}

/* Push an array of the rows of s->res. Returns 1. */
static int push_rows(lua_State *L, struct pg *s) {
  int i, n = PQntuples(s->res);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    push_row(L, s, i);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* Push the first row of s->res, or nil. Returns 1. */
static int push_one(lua_State *L, struct pg *s) {
  if (PQntuples(s->res) > 0) push_row(L, s, 0);
  else lua_pushnil(L);
  return 1;
}

/* ---- Running a call: reconnect, retry, errors ---- */

/* The session's settings, on every (re)connection: durable commits, UTF-8,
** and the server-side timeouts (see TIMEOUTS) unless the connection string
** (options=-c ...), PGOPTIONS or the role's or database's settings chose
** their own (anything but 0). Returns 1, or 0 with the failure in s. */
static int session_setup(struct pg *s) {
  int i;
  PQsetNoticeProcessor(s->conn, quiet, NULL);
  if (!q(s, "SET synchronous_commit = on", NULL) || !q(s, "SET client_encoding = 'UTF8'", NULL))
    return 0;
  for (i = 0; i < 2; i++) {
    static const char *const get[] = {"SHOW statement_timeout", "SHOW idle_in_transaction_session_timeout"};
    static const char *const set[] = {"SET statement_timeout = '" STATEMENT_TIMEOUT "'",
                                      "SET idle_in_transaction_session_timeout = '" IDLE_TX_TIMEOUT "'"};
    if (!q(s, get[i], NULL)) return 0;
    if (strcmp(PQgetvalue(s->res, 0, 0), "0") == 0 && !q(s, set[i], NULL)) return 0;
  }
  return 1;
}

/* Reconnect once per call. Returns 1 when connected again. */
static int reconnect(struct pg *s) {
  if (s->reconnected) return 0;
  s->reconnected = 1;
  clear_res(s);
  PQreset(s->conn);
  if (PQstatus(s->conn) != CONNECTION_OK) return 0;
  return session_setup(s);
}

/* Push nil, ghl.error{kind="store", code=...} for the failure in s. */
static int pg_fail(lua_State *L, struct pg *s, const char *what) {
  const char *code = "postgresql";
  if (s->committing) {
    ghl_fail(L, "store", "token store %s: the connection was lost while committing %s (%s), so whether"
             " it was saved is unknown%s", s->path, what ? what : "a change", s->msg,
             what ? "; the claim stays in phase 'sending' unless it was saved, and the next use of this"
                    " token recovers it (ghlua auth doctor shows it)" : "");
    code = "uncertain";
  } else if (s->fail == F_CONN) {
    if (PQstatus(s->conn) != CONNECTION_OK) {
      char first[sizeof s->msg];
      snprintf(first, sizeof first, "%s", s->msg);
      set_msg(s, PQerrorMessage(s->conn));
      ghl_fail(L, "store", "token store %s: %s; reconnecting failed: %s (is the PostgreSQL server"
               " running?)", s->path, first, s->msg);
    } else {
      ghl_fail(L, "store", "token store %s: %s (the connection was lost)", s->path, s->msg);
    }
    code = "connection";
  } else if (s->fail == F_RETRY) {
    ghl_fail(L, "store", "token store %s: %s (still conflicting after %d attempts)", s->path,
             s->msg, RETRIES);
    code = "busy";
  } else {
    ghl_fail(L, "store", "token store %s: %s", s->path, s->msg);
  }
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  if (s->sqlstate[0]) {
    lua_pushstring(L, s->sqlstate);
    lua_setfield(L, -2, "sqlstate");
  }
  return 2;
}

/* What a body returns on failure (s->fail set); >= 0 is its results. */
#define FAILED (-1)

/* Call body (which runs one transaction or one statement and pushes its
** results only once they are final) until it succeeds or fails for good:
** a serialization failure or deadlock is retried; a lost connection is
** reconnected once and the body run again unless a COMMIT whose outcome
** matters was under way. A transaction left open (a raise) is rolled back
** first. what names what a COMMIT saves, for the "unknown" message. */
static int run(lua_State *L, struct pg *s, int (*body)(lua_State *, struct pg *), const char *what) {
  int top = lua_gettop(L), attempt, r;
  struct timespec pause = {0, 0};
  s->reconnected = 0;
  if (s->tx) {                      /* one try: the transaction is the unit */
    s->fail = F_NONE;
    s->committing = 0;
    s->sqlstate[0] = '\0';
    if (s->tx_failed)
      return ghl_fail(L, "store", "token store %s: an earlier statement of this transaction failed;"
                      " nothing of it will be written", s->path);
    if ((r = body(L, s)) >= 0) return r;
    lua_settop(L, top);
    s->tx_failed = 1;
    return pg_fail(L, s, NULL);
  }
  for (attempt = 1; ; attempt++) {
    s->fail = F_NONE;
    s->committing = 0;
    s->sqlstate[0] = '\0';
    if (PQstatus(s->conn) != CONNECTION_OK && !reconnect(s)) {
      if (s->fail == F_NONE) {
        s->fail = F_CONN;
        snprintf(s->msg, sizeof s->msg, "the connection was lost");
      }
      return pg_fail(L, s, NULL);
    }
    rollback(s);
    r = body(L, s);
    if (r >= 0) return r;
    lua_settop(L, top);
    if (s->fail == F_RETRY && attempt < RETRIES) {
      rollback(s);
      pause.tv_nsec = (long)(rand() % 20 + 1) * 1000000L * attempt;
      nanosleep(&pause, NULL);
      continue;
    }
    if (s->fail == F_CONN && !s->committing && !s->reconnected && reconnect(s)) continue;
    rollback(s);
    return pg_fail(L, s, s->committing ? what : NULL);
  }
}

/* ---- Opening and the schema ---- */

static int body_setup(lua_State *L, struct pg *s) {
  struct params p = {0};
  int version = 0;
  (void)L;
  if (!begin(s)) return FAILED;
  p_int(&p, LOCK_SCHEMA);
  if (!q(s, "SELECT pg_advisory_xact_lock($1::bigint)", &p) ||
      !q(s, "CREATE SCHEMA IF NOT EXISTS ghlua", NULL) ||
      !q(s, "CREATE TABLE IF NOT EXISTS ghlua.schema_version(version integer NOT NULL)", NULL) ||
      !q(s, "SELECT max(version) FROM ghlua.schema_version", NULL))
    return FAILED;
  if (!PQgetisnull(s->res, 0, 0)) version = atoi(PQgetvalue(s->res, 0, 0));
  if (version > SCHEMA_VERSION) {
    rollback(s);
    return 100 + version;          /* handled by pg_setup */
  }
  if (version < 1 && (!q(s, schema_v1, NULL) ||
                      !q(s, "INSERT INTO ghlua.schema_version VALUES(1)", NULL)))
    return FAILED;
  /* Migrations from N to N+1, in this transaction. */
  if (version < 2 && (!q(s, schema_v2, NULL) ||
                      !q(s, "UPDATE ghlua.schema_version SET version = 2", NULL)))
    return FAILED;
  if (version < 3 && (!q(s, schema_v3, NULL) ||
                      !q(s, "UPDATE ghlua.schema_version SET version = 3", NULL)))
    return FAILED;
  if (!commit(s, 0)) return FAILED;
  return 0;
}

/* The schema at SCHEMA_VERSION: a quick look first, then create or
** migrate under the advisory lock. Returns 0, or 2 with nil, err pushed. */
static int pg_setup(lua_State *L, struct pg *s) {
  int r;
  if (!session_setup(s)) return pg_fail(L, s, NULL);
  if (q(s, "SELECT max(version) FROM ghlua.schema_version", NULL) && !PQgetisnull(s->res, 0, 0) &&
      atoi(PQgetvalue(s->res, 0, 0)) == SCHEMA_VERSION)
    return 0;
  r = run(L, s, body_setup, NULL);
  if (r == 0) return 0;
  if (r == 2) return 2;
  ghl_fail(L, "store", "token store %s was written by a newer ghlua (schema %d); it was left unchanged",
           s->path, r - 100);
  lua_pushliteral(L, "version");
  lua_setfield(L, -2, "code");
  return 2;
}

/* open(conninfo) at stack 1 -> db, or nil, err. The userdata is made
** first (closed), so a failure leaves only what __gc closes. */
int ghl_store_pg_open(lua_State *L) {
  const char *ci = luaL_checkstring(L, 1);
  /* Defaults before dbname: the user's string (expanded from dbname)
  ** overrides each of them. */
  const char *keys[] = {"connect_timeout", "fallback_application_name", "keepalives", "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname", NULL};
  const char *vals[] = {CONNECT_TIMEOUT, "ghlua", "1", KEEPALIVES_IDLE, KEEPALIVES_INTERVAL,
                        KEEPALIVES_COUNT, TCP_USER_TIMEOUT, ci, NULL};
  char *perr = NULL;
  PQconninfoOption *opts;
  luaL_Buffer b;
  size_t len;
  const char *path;
  struct pg *s;
  int r, odd;
  lua_settop(L, 1);
  if (!ghl_lib_load(&ghl_pq_lib)) return ghl_lib_fail(L, &ghl_pq_lib);   /* libpq, opened here (lib_pq.h) */
  luaL_buffinit(L, &b);
  odd = add_sanitized(&b, ci);
  luaL_pushresult(&b);                                   /* ci path */
  path = lua_tolstring(L, 2, &len);
  s = lua_newuserdatauv(L, sizeof *s + len + 1, 0);      /* ci path db */
  memset(s, 0, sizeof *s);
  memcpy(s->path, path, len + 1);
  luaL_setmetatable(L, PG_MT);
  if (odd) {
    ghl_fail(L, "store", "token store %s: not a valid PostgreSQL connection string: the password"
             " holds an unencoded '@' or '/'; write them as %%40 and %%2F, or put the password in"
             " PGPASSWORD or ~/.pgpass (GHLUA_STORE, --store)", s->path);
    lua_pushliteral(L, "conninfo");
    lua_setfield(L, -2, "code");
    return 2;
  }
  opts = PQconninfoParse(ci, &perr);
  if (opts == NULL) {
    set_msg(s, perr ? perr : "out of memory");
    PQfreemem(perr);
    /* libpq quotes the token it could not read, which may be the password:
    ** keep the quote only where it names a key. */
    if (strncmp(s->msg, "invalid URI query parameter: ", 29) != 0 &&
        strncmp(s->msg, "invalid connection option ", 26) != 0) {
      size_t n = strcspn(s->msg, "\"");
      while (n > 0 && (s->msg[n - 1] == ' ' || s->msg[n - 1] == ':')) n--;
      s->msg[n] = '\0';
    }
    ghl_fail(L, "store", "token store %s: not a valid PostgreSQL connection string: %s; write"
             " postgresql://USER@HOST[:PORT]/DBNAME or key=value pairs such as"
             " 'host=/run/postgresql dbname=ghlua' (GHLUA_STORE, --store), with the password in"
             " GHLUA_STORE, PGPASSWORD or ~/.pgpass", s->path, s->msg);
    lua_pushliteral(L, "conninfo");
    lua_setfield(L, -2, "code");
    return 2;
  }
  PQconninfoFree(opts);
  s->conn = PQconnectdbParams(keys, vals, 1);
  if (s->conn == NULL) return ghl_fail(L, "store", "token store %s: out of memory", s->path);
  if (PQstatus(s->conn) != CONNECTION_OK) {
    set_msg(s, PQerrorMessage(s->conn));
    pg_release(s);
    ghl_fail(L, "store", "token store %s: cannot connect: %s (check the server and GHLUA_STORE"
             " or --store)", s->path, s->msg);
    lua_pushliteral(L, "connect");
    lua_setfield(L, -2, "code");
    return 2;
  }
  if ((r = pg_setup(L, s)) != 0) {
    pg_release(s);
    return r;
  }
  return 1;
}

/* ---- Apps ---- */

static int body_put_app(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_fields(L, &p, 2, ghl_app_fields);
  p_int(&p, (long long)time(NULL));
  if (!q(s, SQL_PUT_APP, &p)) return FAILED;
  lua_pushboolean(L, 1);
  return 1;
}

static int pg_put_app(lua_State *L) {
  struct pg *s = check_pg(L);
  ghl_check_fields(L, 2, ghl_app_fields, "put_app");
  ghl_check_value(L, 2, "name", 1, NULL, NULL, "put_app");
  ghl_check_value(L, 2, "client_id", 1, NULL, NULL, "put_app");
  ghl_check_value(L, 2, "user_type", 0, "Location", "Company", "put_app");
  return run(L, s, body_put_app, NULL);
}

static int body_get_app(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  if (!q(s, SQL_GET_APP, &p)) return FAILED;
  return push_one(L, s);
}

static int pg_get_app(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  return run(L, s, body_get_app, NULL);
}

static int body_list_apps(lua_State *L, struct pg *s) {
  if (!q(s, SQL_LIST_APPS, NULL)) return FAILED;
  return push_rows(L, s);
}

static int pg_list_apps(lua_State *L) {
  return run(L, check_pg(L), body_list_apps, NULL);
}

static int body_remove_app(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  if (!q(s, SQL_DEL_APP, &p)) return FAILED;
  lua_pushboolean(L, atoi(PQgetvalue(s->res, 0, 0)) > 0);
  return 1;
}

static int pg_remove_app(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  return run(L, s, body_remove_app, NULL);
}

/* ---- Tokens ---- */

static int body_put_token(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_fields(L, &p, 2, ghl_token_fields);
  p_int(&p, (long long)time(NULL));
  if (!q(s, SQL_PUT_TOKEN, &p)) return FAILED;
  lua_pushboolean(L, 1);
  return 1;
}

static int pg_put_token(lua_State *L) {
  struct pg *s = check_pg(L);
  ghl_check_fields(L, 2, ghl_token_fields, "put_token");
  ghl_check_value(L, 2, "app", 1, NULL, NULL, "put_token");
  ghl_check_value(L, 2, "resource_id", 1, NULL, NULL, "put_token");
  ghl_check_value(L, 2, "resource_type", 1, "Location", "Company", "put_token");
  ghl_check_value(L, 2, "kind", 0, "oauth", "pit", "put_token");
  return run(L, s, body_put_token, NULL);
}

static int body_get_token(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  p_value(L, &p, 3);
  if (!q(s, SQL_GET_TOKEN, &p)) return FAILED;
  return push_one(L, s);
}

static int pg_get_token(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  return run(L, s, body_get_token, NULL);
}

static int body_find_tokens(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_fields(L, &p, 2, ghl_find_fields);
  if (!q(s, SQL_FIND_TOKENS, &p)) return FAILED;
  return push_rows(L, s);
}

static int pg_find_tokens(lua_State *L) {
  struct pg *s = check_pg(L);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  ghl_check_fields(L, 2, ghl_find_fields, "find_tokens");
  return run(L, s, body_find_tokens, NULL);
}

static int body_delete_token(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  p_value(L, &p, 3);
  if (!q(s, SQL_DEL_TOKEN, &p)) return FAILED;
  lua_pushboolean(L, atoi(PQgetvalue(s->res, 0, 0)) > 0);
  return 1;
}

static int pg_delete_token(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  return run(L, s, body_delete_token, NULL);
}

static int body_set_status(lua_State *L, struct pg *s) {
  struct params p = {0};
  int i;
  for (i = 2; i <= 5; i++) p_value(L, &p, i);
  if (!q(s, SQL_SET_STATUS, &p)) return FAILED;
  lua_pushboolean(L, changes(s) > 0);
  return 1;
}

static int pg_set_status(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  luaL_checkstring(L, 4);
  luaL_optstring(L, 5, NULL);
  lua_settop(L, 5);
  return run(L, s, body_set_status, NULL);
}

/* ---- Refresh claims ---- */

/* Read the claim on (app, resource_id) at stack 2, 3 into c; locked
** (FOR UPDATE) inside a transaction. Returns 1, or 0 on failure. */
static int read_claim(lua_State *L, struct pg *s, struct claim *c, int locked) {
  struct params p = {0};
  memset(c, 0, sizeof *c);
  p_owner(L, &p);
  if (!q(s, locked ? SQL_GET_CLAIM_LOCKED : SQL_GET_CLAIM, &p)) return 0;
  if (PQntuples(s->res) == 0) return 1;
  c->found = 1;
  c->pid = (lua_Integer)strtoll(PQgetvalue(s->res, 0, 0), NULL, 10);
  snprintf(c->phase, sizeof c->phase, "%s", PQgetvalue(s->res, 0, 1));
  c->started_at = strtod(PQgetvalue(s->res, 0, 2), NULL);
  c->lease_until = strtod(PQgetvalue(s->res, 0, 3), NULL);
  c->samehost = PQgetvalue(s->res, 0, 4)[0] == 't';
  c->mine = PQgetvalue(s->res, 0, 5)[0] == 't';
  return 1;
}

/* db:claim(app, resource_id [, lease_seconds=60]): see store.c. The live
** case is decided without a lock; otherwise, under the (app, resource_id)
** advisory lock and the claim's row lock, the claim is taken, extended or
** taken over, keeping its phase. */
static int body_claim(lua_State *L, struct pg *s) {
  double lease = lua_tonumber(L, 4), now = ghl_store_now();
  const char *reason = NULL;
  struct params p = {0};
  struct claim c;
  int pass;
  for (pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      p_value(L, &p, 2);
      p_value(L, &p, 3);
      if (!begin(s) || !q(s, SQL_CLAIM_LOCK, &p)) return FAILED;
    }
    if (!read_claim(L, s, &c, pass)) return FAILED;
    if (c.found && !c.mine && (reason = ghl_claim_stale(&c, now)) == NULL) {
      if (pass == 1 && !commit(s, 0)) return FAILED;
      lua_pushboolean(L, 0);
      ghl_push_claim(L, &c, NULL);
      return 2;
    }
  }
  p.n = 0;
  p_owner(L, &p);
  if (c.mine) {
    p_num(&p, now + lease);
  } else {
    p_num(&p, now);
    p_num(&p, now + lease);
  }
  if (!q(s, c.mine ? SQL_EXTEND_CLAIM : SQL_PUT_CLAIM, &p) || !commit(s, 0)) return FAILED;
  lua_pushboolean(L, 1);
  if (!c.found || (c.mine && strcmp(c.phase, "claimed") == 0)) return 1;
  ghl_push_claim(L, &c, c.mine ? "own" : reason);
  return 2;
}

static int pg_claim(lua_State *L) {
  struct pg *s = check_pg(L);
  double lease = luaL_optnumber(L, 4, 60);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  luaL_argcheck(L, lease > 0 && lease < 1e9, 4, "lease must be a positive number of seconds");
  lua_settop(L, 3);
  lua_pushnumber(L, lease);
  return run(L, s, body_claim, NULL);
}

static int body_claim_of(lua_State *L, struct pg *s) {
  struct claim c;
  if (!read_claim(L, s, &c, 0)) return FAILED;
  if (!c.found) {
    lua_pushnil(L);
    return 1;
  }
  ghl_push_claim(L, &c, c.mine ? "own" : ghl_claim_stale(&c, ghl_store_now()));
  return 1;
}

static int pg_claim_of(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  return run(L, s, body_claim_of, NULL);
}

/* Push nil, ghl.error{kind="claim"}: what became of the claim on (app,
** resource_id) this process expected to hold (as store.c says it).
** Returns 2, or FAILED. */
static int claim_lost(lua_State *L, struct pg *s) {
  const char *app = lua_tostring(L, 2), *rid = lua_tostring(L, 3);
  struct claim c;
  if (!read_claim(L, s, &c, 0)) return FAILED;
  if (c.mine)
    return ghl_fail(L, "claim", "the refresh claim on %s %s has expired; claim it again", app, rid);
  if (c.found)
    return ghl_fail(L, "claim", "the refresh claim on %s %s is held by pid %d (phase %s), not by this process",
                    app, rid, (int)c.pid, c.phase);
  return ghl_fail(L, "claim", "this process holds no refresh claim on %s %s", app, rid);
}

static int body_claim_phase(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_owner(L, &p);
  p_value(L, &p, 4);
  p_num(&p, ghl_store_now());
  if (!q(s, SQL_SET_PHASE, &p)) return FAILED;
  if (changes(s) == 0) return claim_lost(L, s);
  lua_pushboolean(L, 1);
  return 1;
}

static int pg_claim_phase(lua_State *L) {
  struct pg *s = check_pg(L);
  size_t len;
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  luaL_checklstring(L, 4, &len);
  luaL_argcheck(L, len > 0 && len <= GHL_STORE_MAX_PHASE, 4, "phase must be 1..64 bytes");
  return run(L, s, body_claim_phase, NULL);
}

/* One transaction with synchronous_commit on: the claim still ours (row
** locked), the token updated with rotation, the claim deleted. */
static int body_commit_refresh(lua_State *L, struct pg *s) {
  struct params p = {0}, h = {0};
  p_fields(L, &p, 4, ghl_refresh_fields);
  p_value(L, &p, 2);
  p_value(L, &p, 3);
  p_int(&p, (long long)time(NULL));
  ghl_store_init_me();
  p_int(&p, (long long)ghl_store_me.pid);
  p_owner(L, &h);
  if (!begin(s) || !q(s, "SET LOCAL synchronous_commit = on", NULL) ||
      !q(s, SQL_HELD, &h))
    return FAILED;
  if (PQntuples(s->res) == 0) {
    if (!commit(s, 0)) return FAILED;
    return claim_lost(L, s);
  }
  if (!q(s, SQL_COMMIT_REFRESH, &p)) return FAILED;
  if (changes(s) == 0) {
    rollback(s);
    ghl_fail(L, "store", "token store %s has no token for %s %s", s->path,
             lua_tostring(L, 2), lua_tostring(L, 3));
    lua_pushliteral(L, "not_found");
    lua_setfield(L, -2, "code");
    return 2;
  }
  if (!q(s, SQL_DEL_CLAIM, &h) || !commit(s, 1)) return FAILED;
  lua_pushboolean(L, 1);
  return 1;
}

static int pg_commit_refresh(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  ghl_check_fields(L, 4, ghl_refresh_fields, "commit_refresh");
  return run(L, s, body_commit_refresh, "the refreshed token");
}

static int body_release(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_owner(L, &p);
  if (!q(s, SQL_DEL_CLAIM, &p)) return FAILED;
  lua_pushboolean(L, changes(s) > 0);
  return 1;
}

static int pg_release_claim(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  return run(L, s, body_release, NULL);
}

/* ---- Key/value ---- */

static int body_kv_get(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  p_value(L, &p, 3);
  if (!q(s, SQL_KV_GET, &p)) return FAILED;
  if (PQntuples(s->res) == 0) {
    lua_pushnil(L);
    return 1;
  }
  push_field(L, s, 0, 0);
  lua_pushinteger(L, (lua_Integer)strtod(PQgetvalue(s->res, 0, 1), NULL));
  return 2;
}

static int pg_kv_get(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  return run(L, s, body_kv_get, NULL);
}

static int body_kv_put(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  p_value(L, &p, 3);
  p_value(L, &p, 4);
  p_int(&p, (long long)time(NULL));
  if (!q(s, SQL_KV_PUT, &p)) return FAILED;
  lua_pushboolean(L, 1);
  return 1;
}

static int pg_kv_put(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  luaL_checkstring(L, 4);
  lua_settop(L, 4);                  /* luaL_checkstring made a number a string in place */
  return run(L, s, body_kv_put, NULL);
}

static int body_kv_delete(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  p_value(L, &p, 3);
  if (!q(s, SQL_KV_DEL, &p)) return FAILED;
  lua_pushboolean(L, changes(s) > 0);
  return 1;
}

static int pg_kv_delete(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  return run(L, s, body_kv_delete, NULL);
}

static int body_kv_list(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  if (!q(s, SQL_KV_LIST, &p)) return FAILED;
  return push_rows(L, s);
}

/* db:kv_list([ns]) -> array of {ns=, key=, value=, updated_at=} sorted by
** ns, key (bytewise, as SQLite), every namespace when ns is nil; or nil, err. */
static int pg_kv_list(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_optstring(L, 2, NULL);
  lua_settop(L, 2);
  return run(L, s, body_kv_list, NULL);
}

/* ---- Webhook events ---- */

static int body_put_event(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_fields(L, &p, 2, ghl_event_fields);
  p_num(&p, ghl_store_now());
  if (!begin(s) || !q(s, SQL_PUT_EVENT, &p)) return FAILED;
  lua_pushboolean(L, changes(s) > 0);
  if (!commit(s, 1)) return FAILED;
  return 1;
}

static int pg_put_event(lua_State *L) {
  struct pg *s = check_pg(L);
  ghl_check_fields(L, 2, ghl_event_fields, "put_event");
  ghl_check_value(L, 2, "id", 1, NULL, NULL, "put_event");
  ghl_check_value(L, 2, "body", 1, NULL, NULL, "put_event");
  return run(L, s, body_put_event, "the webhook event");
}

static int body_get_event(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  if (!q(s, SQL_GET_EVENT, &p)) return FAILED;
  return push_one(L, s);
}

static int pg_get_event(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  return run(L, s, body_get_event, NULL);
}

static int body_list_events(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_fields(L, &p, 2, ghl_list_event_fields);
  if (!q(s, SQL_LIST_EVENTS, &p)) return FAILED;
  return push_rows(L, s);
}

static int pg_list_events(lua_State *L) {
  struct pg *s = check_pg(L);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  ghl_check_fields(L, 2, ghl_list_event_fields, "list_events");
  return run(L, s, body_list_events, NULL);
}

static int body_retry_event(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  p_num(&p, ghl_store_now());
  if (!begin(s) || !q(s, SQL_RETRY_EVENT, &p)) return FAILED;
  lua_pushboolean(L, changes(s) > 0);
  if (!commit(s, 1)) return FAILED;
  return 1;
}

static int pg_retry_event(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  return run(L, s, body_retry_event, "the event's retry");
}

static int body_set_event_status(lua_State *L, struct pg *s) {
  struct params p = {0};
  p_value(L, &p, 2);
  p_value(L, &p, 3);
  p_value(L, &p, 4);
  p_num(&p, ghl_store_now());
  if (!q(s, SQL_SET_EVENT, &p)) return FAILED;
  lua_pushboolean(L, changes(s) > 0);
  return 1;
}

static int pg_set_event_status(lua_State *L) {
  struct pg *s = check_pg(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  luaL_optstring(L, 4, NULL);
  lua_settop(L, 4);
  return run(L, s, body_set_event_status, NULL);
}

/* ---- The handle ---- */

static int body_check(lua_State *L, struct pg *s) {
  int version, tables;
  if (!q(s, SQL_CHECK, NULL)) return FAILED;
  version = PQgetisnull(s->res, 0, 0) ? 0 : atoi(PQgetvalue(s->res, 0, 0));
  tables = atoi(PQgetvalue(s->res, 0, 1));
  if (version == SCHEMA_VERSION && tables == 7) {
    lua_pushboolean(L, 1);
    return 1;
  }
  ghl_fail(L, "store", "token store %s failed its check: schema version %d with %d of its 7 tables",
           s->path, version, tables);
  lua_pushliteral(L, "corrupt");
  lua_setfield(L, -2, "code");
  return 2;
}

/* db:check() -> true, or nil, err (code "corrupt"): the schema version
** and the tables are there (PostgreSQL checks its own pages). */
static int pg_check(lua_State *L) {
  return run(L, check_pg(L), body_check, NULL);
}

static int body_begin(lua_State *L, struct pg *s) {
  (void)L;
  return q(s, "BEGIN", NULL) ? 0 : FAILED;
}

/* db:transaction(fn) -> what fn(db) returns (true when nothing), or nil,
** err; as on SQLite (store.c): every method called on db inside fn joins
** one transaction (BEGIN is skipped by begin(), COMMIT by commit(), and
** run() neither retries nor reconnects inside it), committed durably, or
** none of it. A raise in fn rolls back and is raised again; fn returning
** nil, err, or any statement in it failing, rolls back and returns nil,
** err. The BEGIN reconnects once like any call; a connection lost at the
** COMMIT gives code "uncertain". Transactions do not nest. */
static int pg_transaction(lua_State *L) {
  struct pg *s = check_pg(L);
  int rc, n, failed;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (s->tx) return luaL_error(L, "store transactions do not nest");
  lua_settop(L, 2);
  if (run(L, s, body_begin, NULL) != 0) return 2;
  s->tx = 1;
  s->tx_failed = 0;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  rc = lua_pcall(L, 1, LUA_MULTRET, 0);   /* stack: db, fn, results... */
  failed = s->tx_failed;
  s->tx = s->tx_failed = 0;
  if (s->conn == NULL) return luaL_error(L, "the store was closed inside its transaction");
  n = lua_gettop(L) - 2;
  if (rc != LUA_OK || failed || (n >= 1 && lua_isnil(L, 3))) {
    rollback(s);
    if (rc != LUA_OK) return lua_error(L);
    if (n >= 2 && lua_isnil(L, 3)) {     /* fn's own nil, err */
      lua_settop(L, 4);
      return 2;
    }
    return ghl_fail(L, "store", "token store %s: a write failed inside a transaction; nothing of it was"
                    " written", s->path);
  }
  s->fail = F_NONE;
  s->sqlstate[0] = '\0';
  if (!commit(s, 1)) {
    int r;
    lua_settop(L, 2);
    if (s->fail != F_CONN) s->committing = 0;   /* refused: certainly not written */
    r = pg_fail(L, s, NULL);
    rollback(s);
    s->committing = 0;
    return r;
  }
  if (n == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return n;
}

static int body_schema(lua_State *L, struct pg *s) {
  if (!q(s, "SELECT max(version) FROM ghlua.schema_version", NULL)) return FAILED;
  lua_pushinteger(L, PQgetisnull(s->res, 0, 0) ? 0 : atoi(PQgetvalue(s->res, 0, 0)));
  return 1;
}

/* db:schema() -> the schema version of the store (ghlua.schema_version). */
static int pg_schema(lua_State *L) {
  return run(L, check_pg(L), body_schema, NULL);
}

/* The PQconninfo() array (it holds the password too) is freed before any
** push: the values are copied into val first, so a raise (out of memory)
** leaks nothing. */
static int body_settings(lua_State *L, struct pg *s) {
  static const char *const conn[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                                     "keepalives_count", "tcp_user_timeout", NULL};
  char val[6][32] = {{0}};
  PQconninfoOption *opts, *o;
  int i;
  if (!q(s, "SELECT current_setting('statement_timeout'),"
            " current_setting('idle_in_transaction_session_timeout')", NULL))
    return FAILED;
  if ((opts = PQconninfo(s->conn)) != NULL) {
    for (o = opts; o->keyword; o++)
      for (i = 0; conn[i]; i++)
        if (strcmp(o->keyword, conn[i]) == 0 && o->val && o->val[0])
          snprintf(val[i], sizeof val[i], "%s", o->val);
    PQconninfoFree(opts);
  }
  lua_createtable(L, 0, 8);
  lua_pushstring(L, PQgetvalue(s->res, 0, 0));
  lua_setfield(L, -2, "statement_timeout");
  lua_pushstring(L, PQgetvalue(s->res, 0, 1));
  lua_setfield(L, -2, "idle_in_transaction_session_timeout");
  for (i = 0; conn[i]; i++)
    if (val[i][0]) {
      lua_pushstring(L, val[i]);
      lua_setfield(L, -2, conn[i]);
    }
  return 1;
}

/* db:settings() -> {connect_timeout=, keepalives=, keepalives_idle=,
** keepalives_interval=, keepalives_count=, tcp_user_timeout= (ms),
** statement_timeout=, idle_in_transaction_session_timeout=} as strings:
** what this connection runs with (see TIMEOUTS); or nil, err. */
static int pg_settings(lua_State *L) {
  return run(L, check_pg(L), body_settings, NULL);
}

/* db:engine() -> "postgresql". */
/* db:data_version() -> an integer that differs from the last call's
** whenever apps, tokens or kv changed since, in any connection: the
** counter schema 3's triggers bump in the writing transaction. */
static int body_data_version(lua_State *L, struct pg *s) {
  if (!q(s, "SELECT version FROM ghlua.meta", NULL)) return FAILED;
  lua_pushinteger(L, PQntuples(s->res) ? (lua_Integer)strtoll(PQgetvalue(s->res, 0, 0), NULL, 10) : 0);
  return 1;
}

static int pg_data_version(lua_State *L) {
  return run(L, check_pg(L), body_data_version, NULL);
}

static int pg_engine(lua_State *L) {
  luaL_checkudata(L, 1, PG_MT);
  lua_pushliteral(L, "postgresql");
  return 1;
}

/* db:close(), __gc, __close: idempotent. */
static int pg_close(lua_State *L) {
  pg_release(luaL_checkudata(L, 1, PG_MT));
  return 0;
}

/* __index: db.path, then the methods (upvalue 1). */
static int pg_index(lua_State *L) {
  struct pg *s = luaL_checkudata(L, 1, PG_MT);
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "path") == 0) {
    lua_pushstring(L, s->path);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

/* __tostring: "ghl.store: PATH" (no password), plus " (closed)". */
static int pg_tostring(lua_State *L) {
  struct pg *s = luaL_checkudata(L, 1, PG_MT);
  lua_pushfstring(L, "ghl.store: %s%s", s->path, s->conn ? "" : " (closed)");
  return 1;
}

static const luaL_Reg pg_methods[] = {
  {"put_app", pg_put_app},
  {"get_app", pg_get_app},
  {"list_apps", pg_list_apps},
  {"remove_app", pg_remove_app},
  {"put_token", pg_put_token},
  {"get_token", pg_get_token},
  {"find_tokens", pg_find_tokens},
  {"delete_token", pg_delete_token},
  {"set_status", pg_set_status},
  {"claim", pg_claim},
  {"claim_phase", pg_claim_phase},
  {"claim_of", pg_claim_of},
  {"commit_refresh", pg_commit_refresh},
  {"release", pg_release_claim},
  {"kv_get", pg_kv_get},
  {"kv_put", pg_kv_put},
  {"kv_delete", pg_kv_delete},
  {"kv_list", pg_kv_list},
  {"put_event", pg_put_event},
  {"get_event", pg_get_event},
  {"list_events", pg_list_events},
  {"retry_event", pg_retry_event},
  {"set_event_status", pg_set_event_status},
  {"check", pg_check},
  {"transaction", pg_transaction},
  {"schema", pg_schema},
  {"engine", pg_engine},
  {"settings", pg_settings},
  {"data_version", pg_data_version},
  {"close", pg_close},
  {NULL, NULL}
};

/* The metatable, made once: luaopen_ghl_store calls this. */
void ghl_store_pg_init(lua_State *L) {
  luaL_newmetatable(L, PG_MT);
  lua_pushcfunction(L, pg_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, pg_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, pg_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, pg_methods);
  lua_pushcclosure(L, pg_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
