/*
** ghl._sandbox: a Lua state of its own for code the user does not trust
** (a shared recipe). The host's objects never enter it: it has the safe
** standard libraries, its own ghl.error and cjson, and the embedded library
** modules it is given; the recipe's client and files are stubs that yield
** requests out to the host (lua/ghl/sandbox.lua), which checks each one.
** Only plain data crosses, in either direction: nil, booleans, numbers,
** strings, tables of those (copied, metatables dropped, cycles refused) and
** JSON null. This is Redis scripting's shape: redis.call copies in and out.
**
** Limits: the state's allocator has a cap, and a count hook ends the run
** at a deadline or on Ctrl-C. Once a limit is hit the state is dead: the
** hook raises at every instruction, so no pcall can hold on to it, and
** every later call answers "killed". A C function of the standard library
** that runs long without calling back (a pathological string pattern) is
** ended by a watchdog alarm past the deadline: the process exits 1.
**
** Nothing here raises inside the recipe's state outside a protected call:
** everything that may allocate there runs under lua_pcall, and the host's
** side is only read (lua_next, lua_tolstring on strings) while it does.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>
#include <lua-cjson.h>

#include "embed.h"
#include "error.h"
#include "host.h"

int luaopen_cjson_safe(lua_State *L);  /* not declared by lua-cjson.h */
int luaopen_ghl_json(lua_State *L);

#define SANDBOX_MT "ghl.sandbox"
#define HOOK_EVERY 1000      /* instructions between limit checks */
#define MAX_DEPTH 100        /* table nesting that may cross */
#define MAX_VALUES 8000000   /* values one crossing may copy */
#define PRELUDE "ghl.sandbox.child"

typedef struct Sandbox {
  lua_State *C;              /* the recipe's state; NULL once closed */
  size_t used, cap;          /* bytes allocated by C, and the cap */
  int denied;                /* the last allocation was refused */
  double deadline;           /* monotonic seconds; 0: none */
  const char *killed;        /* NULL, or "memory", "timeout", "interrupted" */
  int out;                   /* 1: print to stdout, 2: stderr */
  int mute;                  /* print says nothing (a rehearsal run) */
  int next_id;               /* thread ids */
} Sandbox;

/* Registry keys in the recipe's state. */
static const char THREADS = 't';   /* id -> thread */
static const char API = 'a';       /* the prelude's table of entry points */
static const char KILLMSG = 'k';   /* the pre-made error value for a kill */

static Sandbox *running = NULL;    /* the sandbox being resumed (watchdog) */

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Limits ---- */

/* lua_Alloc with a cap. Lua retries a refused allocation once after an
** emergency collection, so only a second refusal in a row is the end:
** the recipe really holds more than the cap. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  Sandbox *s = ud;
  void *p;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    free(ptr);
    s->used -= osize;
    return NULL;
  }
  if (nsize > osize && (s->killed || s->used - osize + nsize > s->cap)) {
    if (s->denied && !s->killed) s->killed = "memory";
    s->denied = 1;
    return NULL;
  }
  p = realloc(ptr, nsize);
  if (p == NULL) return NULL;
  s->denied = 0;
  s->used = s->used - osize + nsize;
  return p;
}

/* Count hook of every thread of the recipe's state (threads inherit it).
** Checks the deadline and Ctrl-C; once killed, it raises at every
** instruction with a value made in advance, so raising needs no memory. */
static void limit_hook(lua_State *L, lua_Debug *ar) {
  Sandbox *s = *(Sandbox **)lua_getextraspace(L);
  (void)ar;
  if (!s->killed) {
    if (ghl_interrupted) s->killed = "interrupted";
    else if (s->deadline > 0 && mono() > s->deadline) s->killed = "timeout";
    else return;
  }
  lua_sethook(L, limit_hook, LUA_MASKCOUNT, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &KILLMSG);
  lua_error(L);
}

/* SIGALRM past the deadline while the recipe's state runs: a C function
** has not returned for a second past it. Only async-signal-safe calls. */
static void on_alarm(int sig) {
  static const char msg[] = "ghlua: the recipe ran past its time limit (--timeout) and was stopped\n";
  (void)sig;
  if (running && running->deadline > 0 && mono() > running->deadline) {
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */ }
    _exit(1);
  }
}

static void arm_watchdog(Sandbox *s) {
  struct itimerval it;
  double left;
  running = s;
  if (s->deadline <= 0) return;
  left = s->deadline - mono() + 1.0;
  if (left < 0.01) left = 0.01;
  memset(&it, 0, sizeof it);
  it.it_value.tv_sec = (time_t)left;
  it.it_value.tv_usec = (suseconds_t)((left - (double)(time_t)left) * 1e6);
  it.it_interval.tv_sec = 1;   /* and again, should the first find it back in the host */
  signal(SIGALRM, on_alarm);
  setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm_watchdog(Sandbox *s) {
  struct itimerval it;
  running = NULL;
  if (s->deadline <= 0) return;
  memset(&it, 0, sizeof it);
  setitimer(ITIMER_REAL, &it, NULL);
  signal(SIGALRM, SIG_DFL);
}

/* ---- Copying plain values between states ---- */

typedef struct Copy {
  const void *path[MAX_DEPTH]; /* the tables being copied, outermost first */
  int depth;
  long values;
  const char *err;             /* why the copy stopped (static text) */
} Copy;

static int can_cross_key(int t) {
  return t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN;
}

/* Push onto T a copy of the value at idx of F. Reads F without raising;
** pushing onto T may raise (T's memory), so the caller makes that safe:
** a protected call when T is the recipe's state. Returns 0 and sets
** cx->err (pushing nothing) for a value that may not cross. */
static int copy_value(lua_State *F, int idx, lua_State *T, Copy *cx) {
  int i;
  idx = lua_absindex(F, idx);
  if (++cx->values > MAX_VALUES) { cx->err = "too many values to copy"; return 0; }
  if (!lua_checkstack(T, 4) || !lua_checkstack(F, 4)) { cx->err = "values nested too deeply"; return 0; }
  switch (lua_type(F, idx)) {
  case LUA_TNIL: lua_pushnil(T); return 1;
  case LUA_TBOOLEAN: lua_pushboolean(T, lua_toboolean(F, idx)); return 1;
  case LUA_TNUMBER:
    if (lua_isinteger(F, idx)) lua_pushinteger(T, lua_tointeger(F, idx));
    else lua_pushnumber(T, lua_tonumber(F, idx));
    return 1;
  case LUA_TSTRING: {
    size_t len;
    const char *str = lua_tolstring(F, idx, &len);
    lua_pushlstring(T, str, len);
    return 1;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(F, idx) == NULL) {  /* cjson.null, the same in every state */
      lua_pushlightuserdata(T, NULL);
      return 1;
    }
    cx->err = "a userdata value cannot cross";
    return 0;
  case LUA_TTABLE: {
    const void *p = lua_topointer(F, idx);
    if (cx->depth >= MAX_DEPTH) { cx->err = "tables nested too deeply"; return 0; }
    for (i = 0; i < cx->depth; i++)
      if (cx->path[i] == p) { cx->err = "a table that contains itself cannot cross"; return 0; }
    cx->path[cx->depth++] = p;
    lua_createtable(T, (int)lua_rawlen(F, idx), 0);
    lua_pushnil(F);
    while (lua_next(F, idx)) {                    /* F: key value */
      if (!can_cross_key(lua_type(F, -2))) {
        cx->err = "only strings, numbers and booleans can be table keys";
        lua_pop(F, 2);
        lua_pop(T, 1);
        return 0;
      }
      if (!copy_value(F, -2, T, cx)) { lua_pop(F, 2); lua_pop(T, 1); return 0; }
      if (!copy_value(F, -1, T, cx)) { lua_pop(F, 2); lua_pop(T, 2); return 0; }
      lua_rawset(T, -3);
      lua_pop(F, 1);                              /* F: key */
    }
    cx->depth--;
    return 1;
  }
  case LUA_TFUNCTION: cx->err = "a function cannot cross"; return 0;
  case LUA_TTHREAD: cx->err = "a coroutine cannot cross"; return 0;
  default: cx->err = "a userdata value cannot cross"; return 0;
  }
}

/* Copy n values from F (those from index first on) onto T. Returns 0 and
** leaves T as it was when one may not cross. */
static int copy_values(lua_State *F, int first, int n, lua_State *T, Copy *cx) {
  int top = lua_gettop(T), i;
  for (i = 0; i < n; i++) {
    if (!copy_value(F, first + i, T, cx)) { lua_settop(T, top); return 0; }
  }
  return 1;
}

/* ---- Protected work inside the recipe's state ---- */

typedef struct Job {
  Sandbox *s;
  lua_State *H;                /* the host */
  int first, n;                /* host values to copy in */
  const char *fname;           /* spawn: the prelude entry point */
  Copy cx;
} Job;

/* lua_CFunction run by lua_pcall on the recipe's main thread: copy the
** job's host values in (results: those values). */
static int copy_in(lua_State *C) {
  Job *j = lua_touserdata(C, 1);
  lua_settop(C, 0);
  if (!copy_values(j->H, j->first, j->n, C, &j->cx)) {
    lua_pushstring(C, j->cx.err);
    return lua_error(C);
  }
  return j->n;
}

/* Run the job's copy-in on the recipe's main thread; on success the values
** are on C's stack. Returns NULL, or why it failed (static text or the
** kill reason). Never raises in either state. */
static const char *protected_copy_in(Job *j) {
  lua_State *C = j->s->C;
  int status;
  lua_settop(C, 0);
  if (!lua_checkstack(C, j->n + 4)) return "too many values to copy";
  lua_pushcfunction(C, copy_in);
  lua_pushlightuserdata(C, j);
  status = lua_pcall(C, 1, LUA_MULTRET, 0);
  if (status == LUA_OK) return NULL;
  lua_settop(C, 0);
  if (j->s->killed) return j->s->killed;
  if (status == LUA_ERRMEM) return "memory";
  return j->cx.err ? j->cx.err : "the value cannot cross";
}

/* ---- The Lua API (host side) ---- */

static Sandbox *check_sandbox(lua_State *L) {
  Sandbox *s = luaL_checkudata(L, 1, SANDBOX_MT);
  if (s->C == NULL) luaL_error(L, "the sandbox is closed");
  return s;
}

/* print(...) inside the recipe: tostring'd values, tab-separated, to the
** run's output (stdout, or stderr with --json), unless muted. */
static int child_print(lua_State *C) {
  Sandbox *s = *(Sandbox **)lua_getextraspace(C);
  int n = lua_gettop(C), i;
  FILE *f = s->out == 2 ? stderr : stdout;
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *str = luaL_tolstring(C, i, &len);
    if (!s->mute) {
      if (i > 1) fputc('\t', f);
      fwrite(str, 1, len, f);
    }
    lua_pop(C, 1);
  }
  if (!s->mute) { fputc('\n', f); fflush(f); }
  return 0;
}

/* embedded(name) -> bytecode, chunkname of an embedded module the sandbox
** may load (upvalue 1: the set of names), or nil. */
static int child_embedded(lua_State *C) {
  const char *name = luaL_checkstring(C, 1);
  int i;
  if (lua_getfield(C, lua_upvalueindex(1), name) != LUA_TBOOLEAN) return 0;
  for (i = 0; ghl_embedded_modules[i].name; i++) {
    const struct ghl_embedded *m = &ghl_embedded_modules[i];
    if (strcmp(m->name, name) == 0) {
      lua_pushlstring(C, (const char *)m->data, m->size);
      lua_pushstring(C, m->chunkname);
      return 2;
    }
  }
  return 0;
}

/* Build the recipe's state: safe libraries, natives for the prelude, the
** prelude itself (its table of entry points goes to the registry). Runs
** protected on the new state; upvalue-free; arg 1: the Job (host index
** job->first holds the list of module names the recipe may require). */
static int child_init(lua_State *C) {
  Job *j = lua_touserdata(C, 1);
  const struct ghl_embedded *m = NULL;
  int i;
  static const luaL_Reg libs[] = {
    {LUA_GNAME, luaopen_base}, {LUA_COLIBNAME, luaopen_coroutine},
    {LUA_TABLIBNAME, luaopen_table}, {LUA_STRLIBNAME, luaopen_string},
    {LUA_MATHLIBNAME, luaopen_math}, {LUA_UTF8LIBNAME, luaopen_utf8},
    {LUA_OSLIBNAME, luaopen_os}, {NULL, NULL}
  };
  const luaL_Reg *lib;
  for (lib = libs; lib->func; lib++) {
    luaL_requiref(C, lib->name, lib->func, 1);
    lua_pop(C, 1);
  }
  lua_newtable(C);
  lua_rawsetp(C, LUA_REGISTRYINDEX, &THREADS);
  lua_createtable(C, 0, 3);
  lua_pushliteral(C, "sandbox");
  lua_setfield(C, -2, "kind");
  lua_pushliteral(C, "the recipe was stopped");
  lua_setfield(C, -2, "message");
  lua_rawsetp(C, LUA_REGISTRYINDEX, &KILLMSG);

  /* the prelude's natives */
  lua_createtable(C, 0, 6);                         /* natives */
  lua_pushcfunction(C, child_print);
  lua_setfield(C, -2, "print");
  lua_newtable(C);                                  /* natives names */
  if (lua_istable(j->H, j->first)) {
    lua_Integer k, n = (lua_Integer)lua_rawlen(j->H, j->first);
    for (k = 1; k <= n; k++) {
      if (lua_rawgeti(j->H, j->first, k) == LUA_TSTRING) {
        lua_pushboolean(C, 1);
        lua_setfield(C, -2, lua_tostring(j->H, -1));
      }
      lua_pop(j->H, 1);
    }
  }
  lua_pushboolean(C, 1);
  lua_setfield(C, -2, PRELUDE);
  lua_pushcclosure(C, child_embedded, 1);
  lua_setfield(C, -2, "embedded");
  luaL_requiref(C, "ghl.error", luaopen_ghl_error, 0);
  lua_setfield(C, -2, "error");
  luaL_requiref(C, "cjson", luaopen_cjson, 0);
  lua_setfield(C, -2, "cjson");
  luaL_requiref(C, "cjson.safe", luaopen_cjson_safe, 0);
  lua_setfield(C, -2, "cjson_safe");
  luaL_requiref(C, "ghl.json", luaopen_ghl_json, 0);   /* its own, over its own cjson.safe */
  lua_setfield(C, -2, "json");

  for (i = 0; ghl_embedded_modules[i].name; i++)
    if (strcmp(ghl_embedded_modules[i].name, PRELUDE) == 0) m = &ghl_embedded_modules[i];
  if (m == NULL) return luaL_error(C, "the sandbox prelude is not embedded");
  if (luaL_loadbufferx(C, (const char *)m->data, m->size, m->chunkname, "b") != LUA_OK)
    return lua_error(C);
  lua_insert(C, -2);                                /* prelude natives */
  lua_call(C, 1, 1);                                /* api */
  if (!lua_istable(C, -1)) return luaL_error(C, "the sandbox prelude returned no table");
  lua_rawsetp(C, LUA_REGISTRYINDEX, &API);
  return 0;
}

/* Close the recipe's state (idempotent; __gc and __close). */
static int sandbox_close(lua_State *L) {
  Sandbox *s = luaL_checkudata(L, 1, SANDBOX_MT);
  if (s->C) {
    lua_close(s->C);
    s->C = NULL;
  }
  return 0;
}

/* new{max_memory = BYTES, timeout = SECONDS, modules = {NAME, ...},
** output = 1|2} -> sandbox, or nil, err. The userdata is made first (closed),
** then the state, so __gc is always safe. It owns the state. */
static int sandbox_new(lua_State *L) {
  Sandbox *s;
  Job j;
  int status;
  luaL_checktype(L, 1, LUA_TTABLE);
  s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, SANDBOX_MT);
  lua_getfield(L, 1, "max_memory");
  s->cap = (size_t)luaL_optinteger(L, -1, 512 * 1024 * 1024);
  lua_getfield(L, 1, "timeout");
  if (!lua_isnil(L, -1)) s->deadline = mono() + luaL_checknumber(L, -1);
  lua_getfield(L, 1, "output");
  s->out = (int)luaL_optinteger(L, -1, 1);
  lua_getfield(L, 1, "modules");                    /* sb mm timeout out modules */
  s->C = lua_newstate(capped_alloc, s);
  if (s->C == NULL) return ghl_fail(L, "sandbox", "cannot make a Lua state for the recipe");
  *(Sandbox **)lua_getextraspace(s->C) = s;
  memset(&j, 0, sizeof j);
  j.s = s;
  j.H = L;
  j.first = lua_gettop(L);
  lua_pushcfunction(s->C, child_init);
  lua_pushlightuserdata(s->C, &j);
  status = lua_pcall(s->C, 1, 0, 0);
  if (status != LUA_OK) {
    const char *msg = lua_type(s->C, -1) == LUA_TSTRING ? lua_tostring(s->C, -1) : "out of memory";
    lua_pushfstring(L, "%s", msg);                  /* copy before closing */
    lua_close(s->C);
    s->C = NULL;
    lua_pushnil(L);
    ghl_pusherror(L, "sandbox", "cannot start the recipe's Lua state: %s", lua_tostring(L, -2));
    return 2;
  }
  lua_sethook(s->C, limit_hook, LUA_MASKCOUNT, HOOK_EVERY);
  lua_settop(L, 2);
  return 1;
}

/* Push the host's answer for a kill: nil... as "killed", reason. */
static int push_killed(lua_State *L, Sandbox *s) {
  lua_pushliteral(L, "killed");
  lua_pushstring(L, s->killed);
  return 2;
}

/* lua_CFunction run by lua_pcall on the recipe's main thread for spawn:
** copy the arguments in, make a thread anchored in THREADS under the next
** id, and put the entry point and the arguments on it. */
static int spawn_in(lua_State *C) {
  Job *j = lua_touserdata(C, 1);
  lua_State *T;
  int id;
  lua_settop(C, 0);
  lua_rawgetp(C, LUA_REGISTRYINDEX, &API);          /* api */
  if (lua_getfield(C, 1, j->fname) != LUA_TFUNCTION)
    return luaL_error(C, "no entry point '%s'", j->fname);
  T = lua_newthread(C);                             /* api fn thread */
  id = ++j->s->next_id;
  lua_rawgetp(C, LUA_REGISTRYINDEX, &THREADS);
  lua_pushvalue(C, -2);
  lua_rawseti(C, -2, id);                           /* api fn thread threads */
  lua_pop(C, 2);
  lua_remove(C, 1);                                 /* fn */
  if (!copy_values(j->H, j->first, j->n, C, &j->cx)) {
    lua_pushstring(C, j->cx.err);
    return lua_error(C);
  }
  if (!lua_checkstack(T, j->n + 2)) return luaL_error(C, "stack");
  lua_xmove(C, T, j->n + 1);
  lua_pushinteger(C, id);
  return 1;
}

/* spawn(fname, ...) -> id: a new thread of the recipe's state that will run
** the prelude's entry point fname with copies of the values; resume starts
** it. Answers "killed", reason when the state is dead; raises (in the host)
** when a value may not cross. */
static int sandbox_spawn(lua_State *L) {
  Sandbox *s = check_sandbox(L);
  lua_State *C = s->C;
  Job j;
  int status;
  if (s->killed) return push_killed(L, s);
  memset(&j, 0, sizeof j);
  j.s = s; j.H = L; j.first = 3; j.n = lua_gettop(L) - 2;
  j.fname = luaL_checkstring(L, 2);
  lua_settop(C, 0);
  if (!lua_checkstack(C, j.n + 8)) return luaL_error(L, "sandbox.spawn: too many values");
  lua_pushcfunction(C, spawn_in);
  lua_pushlightuserdata(C, &j);
  status = lua_pcall(C, 1, 1, 0);
  if (status != LUA_OK) {
    const char *why = lua_type(C, -1) == LUA_TSTRING ? lua_tostring(C, -1) : "out of memory";
    if (s->killed || status == LUA_ERRMEM) {
      if (!s->killed) s->killed = "memory";
      lua_settop(C, 0);
      return push_killed(L, s);
    }
    lua_pushfstring(L, "sandbox.spawn: %s", why);
    lua_settop(C, 0);
    return lua_error(L);
  }
  lua_pushinteger(L, lua_tointeger(C, -1));
  lua_settop(C, 0);
  return 1;
}

/* resume(id, ...) -> "yield" | "done", values...  |  "error", err  |
** "killed", reason. Values and the error are copies (a value that may not
** cross comes back as "error" with a message saying so). */
static int sandbox_resume(lua_State *L) {
  Sandbox *s = check_sandbox(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  lua_State *C = s->C, *T;
  Job j;
  Copy cx;
  const char *err;
  int n = lua_gettop(L) - 2, status, nres = 0, base;
  if (s->killed) return push_killed(L, s);
  lua_settop(C, 0);
  lua_rawgetp(C, LUA_REGISTRYINDEX, &THREADS);
  if (lua_rawgeti(C, -1, id) != LUA_TTHREAD) {
    lua_settop(C, 0);
    return luaL_error(L, "sandbox.resume: no thread %d", (int)id);
  }
  T = lua_tothread(C, -1);
  lua_settop(C, 0);                                 /* still anchored in THREADS */
  memset(&j, 0, sizeof j);
  j.s = s; j.H = L; j.first = 3; j.n = n;
  if ((err = protected_copy_in(&j)) != NULL) {
    if (s->killed) return push_killed(L, s);
    return luaL_error(L, "sandbox.resume: %s", err);
  }
  if (!lua_checkstack(T, n + 1)) { lua_settop(C, 0); return luaL_error(L, "sandbox.resume: stack"); }
  /* a thread not started yet holds its function and spawn's arguments */
  if (lua_status(T) == LUA_OK && lua_gettop(T) > 0) n += lua_gettop(T) - 1;
  lua_xmove(C, T, lua_gettop(C));
  arm_watchdog(s);
  status = lua_resume(T, C, n, &nres);
  disarm_watchdog(s);
  if (status == LUA_ERRMEM && !s->killed) s->killed = "memory";
  if (s->killed) {
    lua_rawgetp(C, LUA_REGISTRYINDEX, &THREADS);
    lua_pushnil(C);
    lua_rawseti(C, -2, id);
    lua_settop(C, 0);
    return push_killed(L, s);
  }
  base = lua_gettop(L);
  memset(&cx, 0, sizeof cx);
  if (status == LUA_YIELD || status == LUA_OK) {
    lua_pushstring(L, status == LUA_YIELD ? "yield" : "done");
    if (!lua_checkstack(L, nres + 4) || !copy_values(T, lua_gettop(T) - nres + 1, nres, L, &cx)) {
      lua_settop(L, base);
      lua_pushliteral(L, "error");
      lua_pushfstring(L, "the recipe %s a value that cannot cross to the host: %s",
                      status == LUA_YIELD ? "passed" : "returned", cx.err ? cx.err : "stack");
      nres = 1;
    }
    lua_pop(T, nres);
  } else {
    lua_pushliteral(L, "error");
    if (!copy_value(T, -1, L, &cx)) {
      lua_pushfstring(L, "the recipe raised an error value that cannot cross (%s)", cx.err);
    }
    nres = 1;
  }
  if (status != LUA_YIELD) {
    lua_rawgetp(C, LUA_REGISTRYINDEX, &THREADS);
    lua_pushnil(C);
    lua_rawseti(C, -2, id);
  }
  lua_settop(C, 0);
  return lua_gettop(L) - base;
}

/* set{mute = bool, output = 1|2, timeout = SECONDS (from now) | false} */
static int sandbox_set(lua_State *L) {
  Sandbox *s = check_sandbox(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (lua_getfield(L, 2, "mute") != LUA_TNIL) s->mute = lua_toboolean(L, -1);
  if (lua_getfield(L, 2, "output") != LUA_TNIL) s->out = (int)luaL_checkinteger(L, -1);
  if (lua_getfield(L, 2, "timeout") != LUA_TNIL)
    s->deadline = lua_toboolean(L, -1) ? mono() + luaL_checknumber(L, -1) : 0;
  return 0;
}

/* memory() -> bytes the recipe's state holds, its cap */
static int sandbox_memory(lua_State *L) {
  Sandbox *s = check_sandbox(L);
  lua_pushinteger(L, (lua_Integer)s->used);
  lua_pushinteger(L, (lua_Integer)s->cap);
  return 2;
}

/* killed() -> nil, or why the recipe was stopped */
static int sandbox_killed(lua_State *L) {
  Sandbox *s = luaL_checkudata(L, 1, SANDBOX_MT);
  if (s->killed == NULL) return 0;
  lua_pushstring(L, s->killed);
  return 1;
}

static int sandbox_tostring(lua_State *L) {
  Sandbox *s = luaL_checkudata(L, 1, SANDBOX_MT);
  lua_pushfstring(L, "ghl.sandbox (%s)", s->C ? (s->killed ? s->killed : "open") : "closed");
  return 1;
}

static const luaL_Reg sandbox_methods[] = {
  {"spawn", sandbox_spawn},
  {"resume", sandbox_resume},
  {"set", sandbox_set},
  {"memory", sandbox_memory},
  {"killed", sandbox_killed},
  {"close", sandbox_close},
  {NULL, NULL}
};

static const luaL_Reg sandbox_meta[] = {
  {"__gc", sandbox_close},
  {"__close", sandbox_close},
  {"__tostring", sandbox_tostring},
  {NULL, NULL}
};

static const luaL_Reg sandbox_funcs[] = {
  {"new", sandbox_new},
  {NULL, NULL}
};

int luaopen_ghl_sandbox(lua_State *L) {
  luaL_newmetatable(L, SANDBOX_MT);
  luaL_setfuncs(L, sandbox_meta, 0);
  luaL_newlib(L, sandbox_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, sandbox_funcs);
  return 1;
}
