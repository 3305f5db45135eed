/* libcsv (CSV reading and writing), opened on first use: see lazylib.h. Include after <csv.h>. */
#ifndef GHL_LIB_CSV_H
#define GHL_LIB_CSV_H

#include <csv.h>

#include "lazylib.h"

#define GHL_CSV_SYMS(X) \
  X(csv_error) X(csv_fini) X(csv_free) X(csv_init) X(csv_parse) X(csv_set_delim) \
  X(csv_set_quote) X(csv_strerror) X(csv_write2)

struct ghl_csv_syms { GHL_CSV_SYMS(GHL_LIB_FIELD) };
extern struct ghl_csv_syms ghl_csv;

#define csv_error (*ghl_csv.p_csv_error)
#define csv_fini (*ghl_csv.p_csv_fini)
#define csv_free (*ghl_csv.p_csv_free)
#define csv_init (*ghl_csv.p_csv_init)
#define csv_parse (*ghl_csv.p_csv_parse)
#define csv_set_delim (*ghl_csv.p_csv_set_delim)
#define csv_set_quote (*ghl_csv.p_csv_set_quote)
#define csv_strerror (*ghl_csv.p_csv_strerror)
#define csv_write2 (*ghl_csv.p_csv_write2)

#endif
