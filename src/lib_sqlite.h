/* SQLite (the token store's file engine), opened on first use: see lazylib.h. Include after <sqlite3.h>. */
#ifndef GHL_LIB_SQLITE_H
#define GHL_LIB_SQLITE_H

#include <sqlite3.h>

#include "lazylib.h"

#define GHL_SQLITE_SYMS(X) \
  X(sqlite3_bind_double) X(sqlite3_bind_int) X(sqlite3_bind_int64) X(sqlite3_bind_null) \
  X(sqlite3_bind_text) X(sqlite3_bind_text64) X(sqlite3_busy_timeout) X(sqlite3_changes) \
  X(sqlite3_clear_bindings) X(sqlite3_close_v2) X(sqlite3_column_bytes) X(sqlite3_column_count) \
  X(sqlite3_column_decltype) X(sqlite3_column_double) X(sqlite3_column_int) \
  X(sqlite3_column_int64) X(sqlite3_column_name) X(sqlite3_column_text) X(sqlite3_column_type) \
  X(sqlite3_errcode) X(sqlite3_errmsg) X(sqlite3_exec) X(sqlite3_extended_errcode) \
  X(sqlite3_extended_result_codes) X(sqlite3_finalize) X(sqlite3_get_autocommit) \
  X(sqlite3_open_v2) X(sqlite3_prepare_v2) X(sqlite3_prepare_v3) X(sqlite3_reset) \
  X(sqlite3_step) X(sqlite3_total_changes64) X(sqlite3_libversion)

struct ghl_sqlite_syms { GHL_SQLITE_SYMS(GHL_LIB_FIELD) };
extern struct ghl_sqlite_syms ghl_sqlite;

#define sqlite3_bind_double (*ghl_sqlite.p_sqlite3_bind_double)
#define sqlite3_bind_int (*ghl_sqlite.p_sqlite3_bind_int)
#define sqlite3_bind_int64 (*ghl_sqlite.p_sqlite3_bind_int64)
#define sqlite3_bind_null (*ghl_sqlite.p_sqlite3_bind_null)
#define sqlite3_bind_text (*ghl_sqlite.p_sqlite3_bind_text)
#define sqlite3_bind_text64 (*ghl_sqlite.p_sqlite3_bind_text64)
#define sqlite3_busy_timeout (*ghl_sqlite.p_sqlite3_busy_timeout)
#define sqlite3_changes (*ghl_sqlite.p_sqlite3_changes)
#define sqlite3_clear_bindings (*ghl_sqlite.p_sqlite3_clear_bindings)
#define sqlite3_close_v2 (*ghl_sqlite.p_sqlite3_close_v2)
#define sqlite3_column_bytes (*ghl_sqlite.p_sqlite3_column_bytes)
#define sqlite3_column_count (*ghl_sqlite.p_sqlite3_column_count)
#define sqlite3_column_decltype (*ghl_sqlite.p_sqlite3_column_decltype)
#define sqlite3_column_double (*ghl_sqlite.p_sqlite3_column_double)
#define sqlite3_column_int (*ghl_sqlite.p_sqlite3_column_int)
#define sqlite3_column_int64 (*ghl_sqlite.p_sqlite3_column_int64)
#define sqlite3_column_name (*ghl_sqlite.p_sqlite3_column_name)
#define sqlite3_column_text (*ghl_sqlite.p_sqlite3_column_text)
#define sqlite3_column_type (*ghl_sqlite.p_sqlite3_column_type)
#define sqlite3_errcode (*ghl_sqlite.p_sqlite3_errcode)
#define sqlite3_errmsg (*ghl_sqlite.p_sqlite3_errmsg)
#define sqlite3_exec (*ghl_sqlite.p_sqlite3_exec)
#define sqlite3_extended_errcode (*ghl_sqlite.p_sqlite3_extended_errcode)
#define sqlite3_extended_result_codes (*ghl_sqlite.p_sqlite3_extended_result_codes)
#define sqlite3_finalize (*ghl_sqlite.p_sqlite3_finalize)
#define sqlite3_get_autocommit (*ghl_sqlite.p_sqlite3_get_autocommit)
#define sqlite3_open_v2 (*ghl_sqlite.p_sqlite3_open_v2)
#define sqlite3_prepare_v2 (*ghl_sqlite.p_sqlite3_prepare_v2)
#define sqlite3_prepare_v3 (*ghl_sqlite.p_sqlite3_prepare_v3)
#define sqlite3_reset (*ghl_sqlite.p_sqlite3_reset)
#define sqlite3_step (*ghl_sqlite.p_sqlite3_step)
#define sqlite3_total_changes64 (*ghl_sqlite.p_sqlite3_total_changes64)
#define sqlite3_libversion (*ghl_sqlite.p_sqlite3_libversion)

#endif
