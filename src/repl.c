/*
** The REPL, shaped like lua.c's doREPL: a line is first tried as an
** expression ("return " .. line), then as a statement; while the syntax
** error ends at <eof> more lines are read. Results are printed by
** ghl.inspect. Line editing is libedit's readline interface, with an fgets
** fallback when stdin is not a terminal.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lauxlib.h>

#include "host.h"
#include "repl.h"

#define EOFMARK "<eof>"
#define MARKLEN (sizeof(EOFMARK) / sizeof(char) - 1)

static int use_readline;

/* Read one line with prompt; push it without its newline. Returns 0 at end
** of input. */
static int pushline(lua_State *L, int first) {
  const char *prompt = first ? "ghlua> " : ">> ";
  if (use_readline) {
    char *line = readline(prompt);
    if (line == NULL) return 0;
    lua_pushstring(L, line);
    free(line);
  } else {
    char buf[4096];
    size_t n;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (;;) {
      if (fgets(buf, sizeof buf, stdin) == NULL) {
        if (luaL_bufflen(&b) == 0) { luaL_pushresult(&b); lua_pop(L, 1); return 0; }
        break;
      }
      n = strlen(buf);
      if (n && buf[n - 1] == '\n') { luaL_addlstring(&b, buf, n - 1); break; }
      luaL_addlstring(&b, buf, n);
    }
    luaL_pushresult(&b);
  }
  return 1;
}

/* Is the syntax error on top an unfinished chunk? */
static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (lmsg >= MARKLEN && strcmp(msg + lmsg - MARKLEN, EOFMARK) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* Try the line on top as "return <line>"; leaves the chunk or the error. */
static int addreturn(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  if (status == LUA_OK) lua_remove(L, -2);            /* remove modified line */
  else lua_pop(L, 2);                                 /* remove result and it */
  return status;
}

/* Keep reading lines while the statement is incomplete. */
static int multiline(lua_State *L) {
  for (;;) {
    size_t len;
    const char *line = lua_tolstring(L, 1, &len);
    int status = luaL_loadbuffer(L, line, len, "=stdin");
    if (!incomplete(L, status) || !pushline(L, 0)) return status;
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
}

/* Read a whole statement: returns the load status with the chunk (or the
** error) on top, or -1 at end of input. */
static int loadline(lua_State *L) {
  int status;
  lua_settop(L, 0);
  if (!pushline(L, 1)) return -1;
  if ((status = addreturn(L)) != LUA_OK) status = multiline(L);
  if (use_readline && lua_rawlen(L, 1) > 0) add_history(lua_tostring(L, 1));
  lua_remove(L, 1);
  return status;
}

/* Print the values left by a call through ghl.repl_print (inspect). */
static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) return;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "ghl.inspect");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) { lua_settop(L, 0); return; }
  lua_getfield(L, -1, "print");
  lua_remove(L, -2);
  lua_insert(L, 1);
  if (lua_pcall(L, n, 0, 0) != LUA_OK) {
    fprintf(stderr, "ghlua: cannot print result: %s\n", lua_tostring(L, -1));
  }
  lua_settop(L, 0);
}

void ghl_repl(lua_State *L) {
  int status;
  use_readline = isatty(0);
  if (use_readline) {
    using_history();
    stifle_history(1000);
    fprintf(stdout, "ghlua %s (Lua 5.4, HighLevel API) — Ctrl-D exits\n", GHLUA_VERSION);
    fflush(stdout);
  }
  while ((status = loadline(L)) != -1) {
    if (status == LUA_OK) status = ghl_docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) print_results(L);
    else ghl_report(L);
    lua_settop(L, 0);
  }
  if (use_readline) fputc('\n', stdout);
  fflush(stdout);
}
