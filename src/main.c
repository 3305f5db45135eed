/*
** ghlua's command line, in the shape of lua.c: options, then a script and
** its arguments, or a built-in command (the command-line app ghl.cli; for
** a command another app runs, such as ghlua sim, it answers which app to
** start, and start_app starts it), or the REPL. All work happens inside
** one protected call (pmain); errors are reported by ghl_report and map to
** the exit status: 0 ok, 1 failure, 2 usage.
*/
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <openssl/crypto.h>

#include "error.h"
#include "host.h"
#include "lib_mhd.h"
#include "lib_sqlite.h"
#include "repl.h"

static const char *progname = "ghlua";

static void print_usage_line(const char *badopt) {
  fprintf(stderr, "ghlua: unrecognized option '%s'; usage: ghlua [options] [script [args]] | ghlua COMMAND ... (see ghlua --help)\n",
          badopt);
}

/* Does `ghlua WORD ...` run a command? A word holding '/' or '.' is a
** script's path, never a command (so running a script does not load the
** command table); any other word is for the command table:
** require("ghl.cli").is_command(word), which raises a usage error for a
** word that looks like a mistyped command. Returns a lua status; on
** LUA_OK *yes is set, else the error is on the stack. */
static int is_command(lua_State *L, const char *word, int *yes) {
  int status;
  if (strpbrk(word, "/.")) { *yes = 0; return LUA_OK; }
  ghl_require(L, "ghl.cli");
  lua_getfield(L, -1, "is_command");
  lua_remove(L, -2);
  lua_pushstring(L, word);
  status = ghl_docall(L, 1, 1);
  if (status == LUA_OK) {
    *yes = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return status;
}

static void print_version(lua_State *L) {
  const char *cjson = "?";
  ghl_require(L, "cjson");
  if (lua_getfield(L, -1, "_VERSION") == LUA_TSTRING) cjson = lua_tostring(L, -1);
  printf("ghlua %s\n", GHLUA_VERSION);
  printf("  %s\n", LUA_RELEASE);
  printf("  libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
  printf("  lua-cjson %s\n", cjson);
  if (ghl_lib_load(&ghl_sqlite_lib)) printf("  SQLite %s\n", sqlite3_libversion());
  else printf("  SQLite: not loaded (%s)\n", ghl_sqlite_lib.error);
  printf("  %s\n", OpenSSL_version(OPENSSL_VERSION));
  if (ghl_lib_load(&ghl_mhd_lib)) printf("  libmicrohttpd %s\n", MHD_get_version());
  else printf("  libmicrohttpd: not loaded (%s)\n", ghl_mhd_lib.error);
  lua_pop(L, 2);
}

/* Build the global `arg` table as lua.c does: script at 0, its arguments
** at 1.., interpreter and options at negative indices. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script - 1, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Run a chunk with its arguments: the script's `...`. */
static int run_chunk(lua_State *L, int status, char **args, int nargs) {
  int i;
  if (status != LUA_OK) return status;
  luaL_checkstack(L, nargs, "too many arguments to script");
  for (i = 0; i < nargs; i++) lua_pushstring(L, args[i]);
  return ghl_docall(L, nargs, 0);
}

/* Load a script file (NULL or "-" means stdin). Expected failure (no such
** file) is reported as a ghl.error so it prints as one line. */
static int load_script(lua_State *L, const char *fname) {
  int status;
  if (fname != NULL && strcmp(fname, "-") == 0) fname = NULL;
  status = luaL_loadfile(L, fname);
  if (status == LUA_ERRFILE) {
    const char *msg = lua_tostring(L, -1);
    lua_pop(L, 1);
    ghl_pusherror(L, "file", "%s; check the path (a built-in command is run as 'ghlua COMMAND')",
                  msg ? msg : "cannot open script");
  }
  return status;
}

/* The global `recipe` of a file run as a script: calls ghl.recipe's
** script_guard(path) with its arguments, so that a recipe run as a script
** says, in one line, to use 'ghlua run'. ghl.recipe is loaded only then,
** not for every script. Upvalue 1: the script's path. */
static int recipe_guard(lua_State *L) {
  ghl_require(L, "ghl.recipe");              /* args... recipe */
  lua_getfield(L, -1, "script_guard");       /* args... recipe script_guard */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_call(L, 1, 1);                         /* args... recipe guard */
  lua_replace(L, -2);                        /* args... guard */
  lua_insert(L, 1);                          /* guard args... */
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

struct args {
  int argc;
  char **argv;
  int status;   /* exit status, set by pmain */
};

/* Call require("ghl.cli").run(name, argv) for a built-in command: name
** is argv[first], or `name` when not NULL (argv[first] is then its first
** argument). */
static int run_command(lua_State *L, char **argv, int argc, int first, const char *name) {
  int i, status;
  ghl_require(L, "ghl.cli");
  lua_getfield(L, -1, "run");
  lua_remove(L, -2);
  if (name) { lua_pushstring(L, name); first--; }
  else lua_pushstring(L, argv[first]);
  lua_createtable(L, argc - first - 1, 0);
  for (i = first + 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - first);
  }
  status = ghl_docall(L, 2, 1);
  return status;
}

/* ghl.cli.run answered, for a command another app runs (ghlua sim), what
** to start: the table {app=, entry=, opts=, args=, usage=, ...} on top of
** the stack. Require app through the captured require and call
** app[entry](start). Returns a lua status; the start table is replaced by
** the entry's result, or by the error. */
static int start_app(lua_State *L) {
  int start = lua_gettop(L), status;
  const char *app, *entry;
  lua_getfield(L, start, "app");
  lua_getfield(L, start, "entry");
  app = lua_tostring(L, start + 1);
  entry = lua_tostring(L, start + 2);
  if (app == NULL || entry == NULL) return luaL_error(L, "ghl.cli: a start without app or entry");
  ghl_pushrequire(L);
  lua_pushvalue(L, start + 1);
  status = ghl_docall(L, 1, 1);   /* start app entry module */
  if (status == LUA_OK) {
    if (lua_getfield(L, -1, entry) != LUA_TFUNCTION)
      return luaL_error(L, "ghl.cli: %s has no function %s", app, entry);
    lua_pushvalue(L, start);
    status = ghl_docall(L, 1, 1);   /* start app entry module result */
  }
  lua_replace(L, start);
  lua_settop(L, start);
  return status;
}

/* The whole program, inside one protected call. Upvalue-free: the args
** struct comes as a light userdata argument. */
static int pmain(lua_State *L) {
  struct args *a = lua_touserdata(L, 1);
  int argc = a->argc, i, script = 0, interactive = 0, has_e = 0, status;
  char **argv = a->argv;
  lua_settop(L, 0);

  /* First pass: options up to the script name or command. */
  for (i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (o[0] != '-' || strcmp(o, "-") == 0) { script = i; break; }
    if (strcmp(o, "--") == 0) { if (i + 1 < argc) script = i + 1; break; }
    if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {   /* ghlua help [COMMAND...] */
      status = run_command(L, argv, argc, i + 1, "help");
      a->status = status == LUA_OK ? 0 : ghl_report(L);
      return 0;
    }
    if (strcmp(o, "--version") == 0) { print_version(L); a->status = 0; return 0; }
    if (strcmp(o, "-i") == 0) { interactive = 1; continue; }
    if (strcmp(o, "-v") == 0) {   /* this process only: children are not traced */
      ghl_require(L, "ghl.http");
      lua_getfield(L, -1, "trace");
      lua_pushboolean(L, 1);
      lua_call(L, 1, 0);
      lua_pop(L, 1);
      continue;
    }
    if (strcmp(o, "--quiet") == 0) { setenv("GHLUA_QUIET", "1", 1); continue; }   /* ghl.notice */
    if (strcmp(o, "--store") == 0 || strncmp(o, "--store=", 8) == 0) {   /* read by ghl.config */
      const char *v = o[7] == '=' ? o + 8 : (i + 1 < argc ? argv[i + 1] : NULL);
      if (v == NULL || *v == '\0') {
        fprintf(stderr, "ghlua: '--store' needs a value: a file or a PostgreSQL connection string;"
                " usage: ghlua --store URL|PATH COMMAND...\n");
        a->status = 2;
        return 0;
      }
      if (o[7] != '=') i++;
      setenv("GHLUA_STORE", v, 1);
      continue;
    }
    if (strcmp(o, "-e") == 0 || strcmp(o, "-l") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ghlua: '%s' needs an argument; usage: ghlua %s %s\n", o, o,
                o[1] == 'e' ? "CODE" : "MODULE");
        a->status = 2;
        return 0;
      }
      has_e = 1;
      i++;
      continue;
    }
    print_usage_line(o);
    a->status = 2;
    return 0;
  }

  if (script > 0 && strcmp(argv[script], "-") != 0 && argv[script][0] != '-' && !has_e) {
    int yes = 0;
    if (is_command(L, argv[script], &yes) != LUA_OK) { a->status = ghl_report(L); return 0; }
    if (yes) {
      create_arg_table(L, argv, argc, script);
      status = run_command(L, argv, argc, script, NULL);
      if (status == LUA_OK && lua_istable(L, -1)) status = start_app(L);
      if (status != LUA_OK) { a->status = ghl_report(L); return 0; }
      a->status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
      return 0;
    }
  }

  create_arg_table(L, argv, argc, script > 0 ? script : 0);
  /* Second pass: run -e and -l in order. */
  for (i = 1; i < (script > 0 ? script : argc); i++) {
    if (strcmp(argv[i], "-e") == 0) {
      const char *code = argv[++i];
      status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
      if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "ghlua: syntax error in -e: %s\n", msg ? msg : "?");
        lua_pop(L, 1);
        a->status = 1;
        return 0;
      }
      if (ghl_docall(L, 0, 0) != LUA_OK) { a->status = ghl_report(L); return 0; }
    } else if (strcmp(argv[i], "-l") == 0) {
      const char *mod = argv[++i];
      ghl_pushrequire(L);
      lua_pushstring(L, mod);
      if (ghl_docall(L, 1, 1) != LUA_OK) { a->status = ghl_report(L); return 0; }
      lua_setglobal(L, mod);
    }
  }

  if (script > 0) {
    status = load_script(L, argv[script]);
    if (status == LUA_ERRSYNTAX) {
      fprintf(stderr, "ghlua: syntax error: %s\n", lua_tostring(L, -1));
      lua_pop(L, 1);
      a->status = 1;
      return 0;
    }
    if (status == LUA_OK && strcmp(argv[script], "-") != 0) {
      /* a recipe run as a script says to use 'ghlua run' (recipe_guard) */
      lua_pushstring(L, argv[script]);
      lua_pushcclosure(L, recipe_guard, 1);
      lua_setglobal(L, "recipe");
    }
    status = run_chunk(L, status, argv + script + 1, argc - script - 1);
    if (status != LUA_OK) { a->status = ghl_report(L); return 0; }
  } else if (!has_e && !interactive) {
    if (isatty(0)) {
      interactive = 1;
    } else {
      status = run_chunk(L, load_script(L, NULL), NULL, 0);
      if (status != LUA_OK) { a->status = ghl_report(L); return 0; }
    }
  }
  if (interactive) ghl_repl(L);
  a->status = 0;
  return 0;
}

int main(int argc, char **argv) {
  struct args a;
  lua_State *L;
  int status;
  if (argv[0] && argv[0][0]) progname = argv[0];
  (void)progname;
#if defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
  /* Fixed malloc thresholds instead of glibc's moving ones: blocks up to
     1 MiB (a page of 100 contacts is 160 KB, as body and as string) come
     from the heap, which is given back only when 1 MiB lies free at its
     top. With the moving ones each page's body was returned to the kernel
     and faulted in again: 20 page faults a page, 3,846 against 1,238 for
     200 pages, same peak RSS (bench/RESULTS.md, issue 17). */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
#endif
  L = ghl_newstate();
  if (L == NULL) {
    fprintf(stderr, "ghlua: cannot create Lua state: not enough memory\n");
    return 1;
  }
  a.argc = argc;
  a.argv = argv;
  a.status = 1;
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &a);
  status = lua_pcall(L, 1, 0, 0);
  if (status != LUA_OK) a.status = ghl_report(L);
  fflush(stdout);
  lua_close(L);
  curl_global_cleanup();
  return a.status;
}
