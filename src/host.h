/*
** The host: a Lua state with the standard libraries, our native modules and
** the embedded lua/ tree in package.preload, and the one way to run a chunk.
*/
#ifndef GHL_HOST_H
#define GHL_HOST_H

#include <lua.h>


/* New state with stdlibs opened and every ghl module preloaded. NULL on OOM. */
lua_State *ghl_newstate(void);

/* Push the standard require, captured from the registry's globals when the
** state was built (a script reassigning the global `require` does not
** change it). Natives load Lua modules through it, never through globals. */
void ghl_pushrequire(lua_State *L);

/* Push require(name): the module's value. Raises on failure. */
void ghl_require(lua_State *L, const char *name);

/* Call the function below narg arguments on the stack in protected mode with
** the message handler (traceback for bugs, ghl.error passed through) and the
** SIGINT hook installed. Returns a lua_pcall status; the error value is left
** on the stack. */
int ghl_docall(lua_State *L, int narg, int nres);

/* Print the error on top of the stack to stderr ("ghlua: ..."), pop it, and
** return the exit status it maps to: 2 for kind "usage", else 1. */
int ghl_report(lua_State *L);

/* Set by the SIGINT handler; cleared by whoever consumes it. Long-running
** loops in C (HTTP wait, server run) poll it and stop with kind "interrupted". */
extern volatile int ghl_interrupted;

#endif
