/* The interactive loop: libedit and signals here, the rest in lua/ghl/repl.lua. */
#ifndef GHL_REPL_H
#define GHL_REPL_H

#include <lua.h>

/* Read-eval-print until end of input. Errors are printed, never raised. */
void ghl_repl(lua_State *L);

#endif
