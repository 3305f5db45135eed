/*
** Shared by the two engines of ghl.store: SQLite (store.c) and PostgreSQL
** (store_pg.c). Both give Lua the same methods, arguments, results and
** errors; what they share lives in store.c and is declared here: the
** record field lists and their checks (misuse raises the same message on
** either engine), the claim owner's identity, and the claim rules
** (staleness, the table pushed for a holder).
*/
#ifndef GHL_STORE_H
#define GHL_STORE_H

#include <sys/types.h>
#include <lua.h>

#define GHL_STORE_MAX_PHASE 64

struct field { const char *name; char type; };  /* s string, n number, i integer, b boolean,
                                                   v boolean or string */

extern const struct field ghl_app_fields[], ghl_token_fields[], ghl_refresh_fields[],
  ghl_find_fields[], ghl_event_fields[], ghl_list_event_fields[];

/* Raise unless every key of the table at idx is one of fields with a value
** of its type (store.c). */
void ghl_check_fields(lua_State *L, int idx, const struct field *fields, const char *what);

/* Raise unless field k of the table at idx is a string (when required)
** and, if a or b is given, one of them (store.c). */
void ghl_check_value(lua_State *L, int idx, const char *k, int required,
                     const char *a, const char *b, const char *what);

/* This process as a claim owner: pid, nonce (start time in ns, so a later
** process reusing the pid is not the owner), host and pid namespace.
** ghl_store_init_me() recomputes it after a fork. */
struct ghl_owner { pid_t pid; long long nonce; char host[400]; };
extern struct ghl_owner ghl_store_me;
void ghl_store_init_me(void);

/* Wall-clock seconds with a fraction (claim times, leases). */
double ghl_store_now(void);

struct claim {
  int found, mine, samehost;
  lua_Integer pid;
  double started_at, lease_until;
  char phase[GHL_STORE_MAX_PHASE + 1];
};

/* "dead", "expired" or NULL (live): see store.c. */
const char *ghl_claim_stale(const struct claim *c, double now);

/* Push {pid=, phase=, started_at=, lease_until= [, reason=]}. */
void ghl_push_claim(lua_State *L, const struct claim *c, const char *reason);

/* store_pg.c: is path a PostgreSQL connection string (a postgresql:// or
** postgres:// URI, or libpq key=value pairs)? */
int ghl_store_pg_is_conninfo(const char *path);

/* store_pg.c: open([conninfo]) for a connection string at stack 1: db, or
** nil, err. */
int ghl_store_pg_open(lua_State *L);

/* store_pg.c: make the PostgreSQL handle's metatable (luaopen_ghl_store). */
void ghl_store_pg_init(lua_State *L);

#endif
