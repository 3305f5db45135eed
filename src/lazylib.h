/*
** Optional shared libraries opened on first use (dlopen), so that a
** process that never runs jq, CSV, a server, the REPL or a token store
** (SQLite or PostgreSQL) neither maps them nor pays the dynamic loader for
** their symbols. Each library has a header (lib_jq.h, lib_csv.h,
** lib_mhd.h, lib_edit.h, lib_pq.h, lib_sqlite.h), included by its binding
** with the library's own header (lib_jq.h before it, see there): it lists
** the symbols the binding uses, keeps them in one table of typed
** pointers (filled by ghl_lib_load), and redirects each name to its entry
** with a #define, so the binding's code calls the library as if linked.
** The soname is the one the build compiled against (CMakeLists.txt).
*/
#ifndef GHL_LAZYLIB_H
#define GHL_LAZYLIB_H

#include <lua.h>

struct ghl_lib {
  const char *soname;        /* e.g. "libjq.so.1" */
  const char *package;       /* the package that installs it (dpkg, at build time), or "" */
  const char *purpose;       /* what needs it, for the error: "jq filters" */
  const char *const *names;  /* the symbols, NULL-terminated */
  void **slots;              /* where each symbol's address goes, same order */
  int state;                 /* 0 not tried, 1 loaded, -1 failed */
  char error[320];           /* why it failed, one line */
};

/* A table field for symbol f of the library's header: a pointer of f's type. */
#define GHL_LIB_FIELD(f) __typeof__(f) *p_##f;
/* A name for the symbol list. */
#define GHL_LIB_NAME(f) #f,

/* Open lib and resolve every symbol, once (a failure is remembered). 1
** when ready, 0 when the library or a symbol is missing (lib->error says
** which). */
int ghl_lib_load(struct ghl_lib *lib);

/* What to install for lib, into buf (n bytes, NUL-terminated): the
** soname and the package dpkg named at build time, or the soname alone. */
void ghl_lib_hint(const struct ghl_lib *lib, char *buf, size_t n);

/* ghl_lib_load, raising a one-line ghl.error (kind "unavailable") that
** names the library and the package to install when it is missing. */
void ghl_lib_need(lua_State *L, struct ghl_lib *lib);

/* After ghl_lib_load failed: push nil and that error; returns 2. */
int ghl_lib_fail(lua_State *L, struct ghl_lib *lib);

/* The libraries (lazylib.c). */
extern struct ghl_lib ghl_jq_lib, ghl_csv_lib, ghl_mhd_lib, ghl_edit_lib, ghl_pq_lib, ghl_sqlite_lib;

#endif
