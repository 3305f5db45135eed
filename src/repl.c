/*
** The REPL's C half: a thin adapter between libedit and lua/ghl/repl/,
** which owns the loop, the commands, printing, completion candidates and
** the history file. This file gives that loop the few things Lua cannot do
** itself, as a table of functions passed to repl.run:
**   readline(prompt)   one line, nil at end of input, false on Ctrl-C
**   add_history(line)  the in-memory history (up-arrow); the file is Lua's
**   call(f, ...)       f run by ghl_docall: message handler, and Ctrl-C
**                      aborts it (an HTTP wait returns kind "interrupted")
**   exe                the path of this binary (to start `ghlua sim`)
**   tty                whether lines come from libedit (stdin is a terminal)
** Tab calls repl.complete_line through lua_pcall, so nothing raises
** across libedit's frames. Signals: outside statements SIGINT only sets a
** flag (at the prompt the read is interrupted, libedit returns and the line
** is dropped); while a statement runs, ghl_docall's handler is in place, and
** the prompt's handler is put back after each call. Without a terminal,
** lines are read with fgets and no prompt is shown.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lauxlib.h>

#include "host.h"
#include "lib_edit.h"
#include "repl.h"

static int use_readline;
static volatile sig_atomic_t prompt_interrupted;
static lua_State *complete_L;      /* the state Tab calls into */
static int complete_ref = LUA_NOREF;

/* ---- Signals ---- */

/* SIGINT at the prompt: remember it; the read is interrupted (no
** SA_RESTART), so libedit returns NULL and readline reports false. */
static void on_prompt_sigint(int sig) {
  (void)sig;
  prompt_interrupted = 1;
}

/* Install on_prompt_sigint, without SA_RESTART. */
static void prompt_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_prompt_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, NULL);
}

/* ---- Completion ---- */

/* Called under lua_pcall by complete(): upvalue-free, the line and the
** cursor range come as arguments. Pushes the completer's table. */
static int call_completer(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, complete_ref);   /* args... f */
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* libedit's attempted-completion hook. The Lua completer gets (line,
** start, stop) with 0-based offsets of the word libedit will replace, and
** returns {replacement, candidate...} or {}: entry 1 is what replaces the
** word, the rest are listed on a second Tab. The array and strings are
** malloc'd here and owned by libedit, which frees them. Never raises. */
static char **complete(const char *text, int start, int stop) {
  lua_State *L = complete_L;
  char **matches = NULL;
  int top, i, n;
  (void)text;
  rl_attempted_completion_over = 1;
  rl_completion_append_character = '\0';
  if (L == NULL || complete_ref == LUA_NOREF || !lua_checkstack(L, 8)) return NULL;
  top = lua_gettop(L);
  lua_pushcfunction(L, call_completer);
  lua_pushstring(L, rl_line_buffer ? rl_line_buffer : "");
  lua_pushinteger(L, start);
  lua_pushinteger(L, stop);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK || !lua_istable(L, -1)) goto done;
  n = (int)lua_rawlen(L, -1);
  if (n == 0) goto done;
  matches = calloc((size_t)n + 1, sizeof *matches);
  if (matches == NULL) goto done;
  for (i = 1; i <= n; i++) {
    const char *s = NULL;
    if (lua_rawgeti(L, -1, i) == LUA_TSTRING) s = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (s == NULL || (matches[i - 1] = strdup(s)) == NULL) {
      while (--i > 0) free(matches[i - 1]);
      free(matches);
      matches = NULL;
      goto done;
    }
  }
done:
  lua_settop(L, top);
  return matches;
}

/* ---- Functions for ghl.repl ---- */

/* readline(prompt) -> line | nil (end of input) | false (Ctrl-C). The
** line is pushed without its newline; memory from libedit is freed here. */
static int repl_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "");
  fflush(stdout);
  prompt_interrupted = 0;
  if (use_readline) {
    char *line;
    rl_resize_terminal();             /* the window may have changed meanwhile */
    line = readline(prompt);
    if (line == NULL) {
      if (prompt_interrupted) lua_pushboolean(L, 0);
      else lua_pushnil(L);
      return 1;
    }
    lua_pushstring(L, line);
    free(line);
    return 1;
  } else {
    char buf[4096];
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (;;) {
      size_t n;
      if (fgets(buf, sizeof buf, stdin) == NULL) {
        if (prompt_interrupted) { clearerr(stdin); lua_pushboolean(L, 0); return 1; }
        if (luaL_bufflen(&b) == 0) { lua_pushnil(L); return 1; }
        break;
      }
      n = strlen(buf);
      if (n && buf[n - 1] == '\n') { luaL_addlstring(&b, buf, n - 1); break; }
      luaL_addlstring(&b, buf, n);
    }
    luaL_pushresult(&b);
    return 1;
  }
}

/* add_history(line): the session's in-memory history, for the arrow keys.
** No effect without a terminal. */
static int repl_add_history(lua_State *L) {
  const char *line = luaL_checkstring(L, 1);
  if (use_readline && *line) add_history(line);
  return 0;
}

/* call(f, ...) -> true, results... | false, err. Runs f through ghl_docall
** (tracebacks for bugs, ghl.error untouched, Ctrl-C interrupts it), then
** puts the prompt's SIGINT handler back. */
static int repl_call(lua_State *L) {
  int status;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  status = ghl_docall(L, lua_gettop(L) - 1, LUA_MULTRET);
  prompt_signals();
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, 1);
  return lua_gettop(L);
}

static const luaL_Reg repl_funcs[] = {
  {"readline", repl_readline},
  {"add_history", repl_add_history},
  {"call", repl_call},
  {NULL, NULL}
};

/* Push the path of the running binary (argv[0]'s fallback: "ghlua"). */
static void push_exe(lua_State *L) {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) lua_pushlstring(L, path, (size_t)n);
  else lua_pushliteral(L, "ghlua");
}

/* Libedit setup: no signal handlers of its own (ours are simpler), words
** break where Lua expressions do (not at '.', ':' or '/', so Tab sees
** `ghl.client`, `c:get` and "/contacts/"), matches are ours. */
static void init_readline(void) {
  static char breaks[] = " \t\n\"'`@$><=;|&{(,+*%^~#[]";
  rl_readline_name = "ghlua";
  rl_catch_signals = 0;
  rl_basic_word_break_characters = breaks;
  rl_completer_word_break_characters = breaks;
  rl_attempted_completion_function = complete;
  rl_initialize();
  using_history();
  stifle_history(1000);
}

/* Load ghl.repl, keep repl.complete_line in the registry for Tab, and
** call repl.run(native). Raises on failure (run under lua_pcall). */
static int prun(lua_State *L) {
  ghl_require(L, "ghl.repl");               /* repl */
  lua_getfield(L, -1, "run");               /* repl run */
  luaL_newlib(L, repl_funcs);               /* repl run native */
  push_exe(L);
  lua_setfield(L, -2, "exe");
  lua_pushboolean(L, use_readline);
  lua_setfield(L, -2, "tty");
  lua_getfield(L, -3, "complete_line");     /* repl run native complete */
  complete_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  complete_L = L;
  lua_call(L, 1, 0);
  return 0;
}

/* The REPL until end of input or :quit. Errors of the loop itself are
** reported (ghl_report), never raised; SIGINT's disposition is restored. */
void ghl_repl(lua_State *L) {
  struct sigaction old;
  use_readline = isatty(0);
  if (use_readline && !ghl_lib_load(&ghl_edit_lib)) {   /* libedit, opened here (lib_edit.h) */
    char hint[256];
    ghl_lib_hint(&ghl_edit_lib, hint, sizeof hint);
    fprintf(stderr, "ghlua: no line editing: %s; %s\n", ghl_edit_lib.error, hint);
    use_readline = 0;
  }
  if (use_readline) init_readline();
  sigaction(SIGINT, NULL, &old);
  prompt_signals();
  lua_pushcfunction(L, prun);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) ghl_report(L);
  if (complete_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, complete_ref);
  complete_ref = LUA_NOREF;
  complete_L = NULL;
  sigaction(SIGINT, &old, NULL);
  if (use_readline) clear_history();
  fflush(stdout);
}
