/*
** Optional shared libraries opened on first use: see lazylib.h.
*/
#include <dlfcn.h>
#include <stdio.h>

#include "error.h"
#include "lib_csv.h"
#include "lib_edit.h"
#include "lib_jq.h"
#include "lib_mhd.h"
#include "lib_pq.h"
#include "lib_sqlite.h"

/* The tables the headers' #defines call through. */
struct ghl_jq_syms ghl_jq;
struct ghl_csv_syms ghl_csv;
struct ghl_mhd_syms ghl_mhd;
struct ghl_edit_syms ghl_edit;
struct ghl_pq_syms ghl_pq;
struct ghl_sqlite_syms ghl_sqlite;

static const char *const jq_names[] = {GHL_JQ_SYMS(GHL_LIB_NAME) NULL};
static const char *const csv_names[] = {GHL_CSV_SYMS(GHL_LIB_NAME) NULL};
static const char *const mhd_names[] = {GHL_MHD_SYMS(GHL_LIB_NAME) NULL};
static const char *const edit_names[] = {GHL_EDIT_SYMS(GHL_LIB_NAME) NULL};
static const char *const pq_names[] = {GHL_PQ_SYMS(GHL_LIB_NAME) NULL};
static const char *const sqlite_names[] = {GHL_SQLITE_SYMS(GHL_LIB_NAME) NULL};

/* lib_jq.h: jv_get_kind, also called by jv.h's static jv_is_valid. */
jv_kind ghl_jv_get_kind(jv x) {
  return ghl_jq.p_jv_get_kind(x);
}

/* Each table is a struct of pointers only, filled in order as an array. */
#define LIB(soname, package, purpose, names, table) \
  {soname, package, purpose, names, (void **)&(table), 0, ""}
struct ghl_lib ghl_jq_lib = LIB(GHL_SONAME_JQ, GHL_PACKAGE_JQ, "jq filters", jq_names, ghl_jq);
struct ghl_lib ghl_csv_lib = LIB(GHL_SONAME_CSV, GHL_PACKAGE_CSV, "CSV", csv_names, ghl_csv);
struct ghl_lib ghl_mhd_lib = LIB(GHL_SONAME_MHD, GHL_PACKAGE_MHD, "the HTTP server", mhd_names, ghl_mhd);
struct ghl_lib ghl_edit_lib = LIB(GHL_SONAME_EDIT, GHL_PACKAGE_EDIT, "line editing", edit_names, ghl_edit);
struct ghl_lib ghl_pq_lib = LIB(GHL_SONAME_PQ, GHL_PACKAGE_PQ, "a PostgreSQL store", pq_names, ghl_pq);
struct ghl_lib ghl_sqlite_lib = LIB(GHL_SONAME_SQLITE, GHL_PACKAGE_SQLITE, "the token store", sqlite_names, ghl_sqlite);

/* Caller: the process; the handle of a library loaded whole is kept
** (never dlclose'd), one that lacks a symbol is closed. */
int ghl_lib_load(struct ghl_lib *lib) {
  void *h;
  int i;
  if (lib->state != 0) return lib->state > 0;
  lib->state = -1;
  h = dlopen(lib->soname, RTLD_LAZY | RTLD_LOCAL);
  if (h == NULL) {
    snprintf(lib->error, sizeof lib->error, "cannot load %s, needed for %s: %s",
             lib->soname, lib->purpose, dlerror());
    return 0;
  }
  for (i = 0; lib->names[i]; i++) {
    lib->slots[i] = dlsym(h, lib->names[i]);
    if (lib->slots[i] == NULL) {
      snprintf(lib->error, sizeof lib->error, "cannot use %s, needed for %s: it has no %s (not the version ghlua was built with)",
               lib->soname, lib->purpose, lib->names[i]);
      dlclose(h);
      return 0;
    }
  }
  lib->state = 1;
  return 1;
}

/* Caller: owns buf. */
void ghl_lib_hint(const struct ghl_lib *lib, char *buf, size_t n) {
  if (lib->package[0])
    snprintf(buf, n, "install %s (apt-get install %s)", lib->soname, lib->package);
  else
    snprintf(buf, n, "install the package that provides %s", lib->soname);
}

/* The error of a library that could not be loaded. Stack: +1. */
static void push_missing(lua_State *L, struct ghl_lib *lib) {
  char hint[256];
  ghl_pusherror(L, "unavailable", "%s", lib->error);
  ghl_lib_hint(lib, hint, sizeof hint);
  lua_pushstring(L, hint);
  lua_setfield(L, -2, "hint");
}

void ghl_lib_need(lua_State *L, struct ghl_lib *lib) {
  if (ghl_lib_load(lib)) return;
  push_missing(L, lib);
  lua_error(L);
}

int ghl_lib_fail(lua_State *L, struct ghl_lib *lib) {
  lua_pushnil(L);
  push_missing(L, lib);
  return 2;
}
