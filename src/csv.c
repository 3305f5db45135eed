/*
** ghl._csv: the native core of ghl.csv, a binding of libcsv (Debian's
** libcsv3, RFC 4180 quoting, fields with embedded delimiters, quotes and
** newlines).
**   _csv.parser{delim=",", quote='"', strict=true} -> parser
**   parser:feed(chunk) -> rows, lines [, err]
**   parser:finish()    -> rows, lines [, err]
**   parser:close()     (also __gc and __close)
**   _csv.format(fields, n, delim, quote) -> one record, without line end
** rows is an array of records (arrays of strings), lines the physical line
** each record starts on (1-based; CRLF, LF and a lone CR each end a line,
** so do the ones inside quoted fields; blank lines are skipped but
** counted). A malformed record (strict mode: a quote inside an unquoted
** field, text after a closing quote, a quoted field never closed) stops
** the parser: the records before it come back with err, a ghl.error of
** kind "csv" whose field line is where the bad record starts. Misuse
** (a closed parser, bad options) raises.
**
** libcsv calls back while it parses. The callbacks never touch the Lua
** stack: they copy fields into C buffers owned by the parser userdata (an
** allocation failure is recorded, never raised), and the records are
** pushed after csv_parse returns.
*/
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <csv.h>
#include <lauxlib.h>

#include "buf.h"
#include "error.h"
#include "lib_csv.h"

#define PARSER_MT "ghl.csv.parser"

typedef struct { size_t off, len; } field_span;
typedef struct { size_t first, n; lua_Integer line; } row_span;

typedef struct {
  struct csv_parser p;
  int open;             /* csv_init succeeded and csv_free is due */
  int failed;           /* a parse error stopped the parser */
  int oom;              /* a callback ran out of memory */
  ghl_buf data;         /* the bytes of the fields of pending records */
  field_span *fields;   /* fields of pending records (and the current one) */
  size_t nfields, capfields;
  row_span *rows;       /* pending records */
  size_t nrows, caprows;
  size_t row_first;     /* index in fields of the current record's first field */
  lua_Integer line;     /* physical line the parser has reached */
  lua_Integer row_line; /* line the current record starts on */
  int last_term;        /* the previous record terminator, for CRLF */
  lua_Integer err_line; /* where the bad record starts */
} csv_state;

/* ---- Callbacks (no Lua here) ---- */

/* Newlines in n bytes of s: CRLF, LF and a lone CR count once each. */
static lua_Integer count_lines(const unsigned char *s, size_t n) {
  lua_Integer k = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    if (s[i] == '\n') k++;
    else if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n')) k++;
  }
  return k;
}

/* libcsv: a field ended. Copy it and count the newlines inside it. */
static void on_field(void *s, size_t len, void *data) {
  csv_state *st = data;
  field_span *f;
  if (st->oom) return;
  if (st->nfields == st->capfields) {
    size_t cap = st->capfields ? st->capfields * 2 : 64;
    field_span *n = realloc(st->fields, cap * sizeof *n);
    if (n == NULL) { st->oom = 1; return; }
    st->fields = n;
    st->capfields = cap;
  }
  f = &st->fields[st->nfields];
  f->off = st->data.len;
  f->len = len;
  if (len > 0 && ghl_buf_add(&st->data, s, len) != 0) { st->oom = 1; return; }
  st->nfields++;
  if (len > 0) st->line += count_lines(s, len);
}

/* libcsv: a record ended with terminator c (-1 at the end of input). With
** CSV_REPALL_NL every CR and LF ends a record, so an empty record after a
** CR is the LF of a CRLF, and other empty records are blank lines. */
static void on_row(int c, void *data) {
  csv_state *st = data;
  size_t n = st->nfields - st->row_first;
  int crlf_tail = (c == '\n' && st->last_term == '\r' && n == 0);
  st->last_term = c;
  if (st->oom) return;
  if (n > 0) {
    row_span *r;
    if (st->nrows == st->caprows) {
      size_t cap = st->caprows ? st->caprows * 2 : 32;
      row_span *nr = realloc(st->rows, cap * sizeof *nr);
      if (nr == NULL) { st->oom = 1; return; }
      st->rows = nr;
      st->caprows = cap;
    }
    r = &st->rows[st->nrows++];
    r->first = st->row_first;
    r->n = n;
    r->line = st->row_line;
    st->row_first = st->nfields;
  }
  if (!crlf_tail && (c == '\n' || c == '\r')) st->line++;
  st->row_line = st->line;
}

/* ---- Parser ---- */

static csv_state *check_parser(lua_State *L) {
  csv_state *st = luaL_checkudata(L, 1, PARSER_MT);
  if (!st->open) luaL_error(L, "attempt to use a closed CSV parser");
  return st;
}

/* Free what the parser owns; safe to call twice. */
static void release(csv_state *st) {
  if (st->open) csv_free(&st->p);
  st->open = 0;
  ghl_buf_free(&st->data);
  free(st->fields);
  free(st->rows);
  st->fields = NULL;
  st->rows = NULL;
  st->nfields = st->capfields = st->nrows = st->caprows = st->row_first = 0;
}

/* One character from option field k of the table at index 1, or def. */
static unsigned char opt_char(lua_State *L, const char *k, unsigned char def) {
  size_t n;
  const char *s;
  unsigned char c = def;
  if (lua_getfield(L, 1, k) != LUA_TNIL) {
    s = lua_tolstring(L, -1, &n);
    if (s == NULL || n != 1) luaL_error(L, "csv option '%s' must be one character", k);
    c = (unsigned char)s[0];
  }
  lua_pop(L, 1);
  return c;
}

/* parser{delim=, quote=, strict=} -> parser. Stack: +1. The userdata is
** made closed first, then libcsv is initialised, so __gc is always safe. */
static int csv_new_parser(lua_State *L) {
  csv_state *st;
  unsigned char delim = ',', quote = '"';
  int strict = 1;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    delim = opt_char(L, "delim", ',');
    quote = opt_char(L, "quote", '"');
    if (lua_getfield(L, 1, "strict") != LUA_TNIL) strict = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  st = lua_newuserdatauv(L, sizeof *st, 0);
  memset(st, 0, sizeof *st);
  luaL_setmetatable(L, PARSER_MT);
  if (csv_init(&st->p, (unsigned char)(CSV_REPALL_NL | (strict ? CSV_STRICT | CSV_STRICT_FINI : 0))) != 0)
    return luaL_error(L, "csv: out of memory");
  st->open = 1;
  csv_set_delim(&st->p, delim);
  csv_set_quote(&st->p, quote);
  st->line = st->row_line = 1;
  return 1;
}

/* Push the pending records as rows, lines and forget them. Stack: +2. */
static void push_rows(lua_State *L, csv_state *st) {
  size_t i, j;
  lua_createtable(L, (int)st->nrows, 0);  /* rows */
  lua_createtable(L, (int)st->nrows, 0);  /* rows lines */
  for (i = 0; i < st->nrows; i++) {
    row_span *r = &st->rows[i];
    lua_createtable(L, (int)r->n, 0);
    for (j = 0; j < r->n; j++) {
      field_span *f = &st->fields[r->first + j];
      lua_pushlstring(L, st->data.data ? st->data.data + f->off : "", f->len);
      lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    lua_rawseti(L, -3, (lua_Integer)i + 1);
    lua_pushinteger(L, r->line);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  /* keep the fields of the record in progress, drop the rest */
  if (st->row_first < st->nfields) {
    size_t keep = st->nfields - st->row_first;
    size_t base = st->fields[st->row_first].off;
    if (st->data.data) memmove(st->data.data, st->data.data + base, st->data.len - base);
    st->data.len -= base;
    memmove(st->fields, st->fields + st->row_first, keep * sizeof *st->fields);
    for (j = 0; j < keep; j++) st->fields[j].off -= base;
    st->nfields = keep;
  } else {
    st->nfields = 0;
    st->data.len = 0;
  }
  if (st->data.data) st->data.data[st->data.len] = '\0';
  st->row_first = 0;
  st->nrows = 0;
}

/* Push the error for a parse failure (or OOM) as a third result. */
static int push_failure(lua_State *L, csv_state *st, int code) {
  if (st->oom || code == CSV_ENOMEM) {
    ghl_pusherror(L, "csv", "out of memory while reading CSV");
  } else {
    st->err_line = st->row_line;
    ghl_pusherror(L, "csv", "line %d: malformed record (%s)", (int)st->row_line,
                  code == CSV_EPARSE ? "a quote in an unquoted field, text after a closing quote, or an unclosed quote"
                                     : csv_strerror(code));
    lua_pushinteger(L, st->row_line);
    lua_setfield(L, -2, "line");
  }
  st->failed = 1;
  return 3;
}

/* parser:feed(chunk) -> rows, lines [, err]. */
static int parser_feed(lua_State *L) {
  csv_state *st = check_parser(L);
  size_t len, done;
  const char *s = luaL_checklstring(L, 2, &len);
  if (st->failed) luaL_error(L, "the CSV parser stopped at an error");
  done = csv_parse(&st->p, s, len, on_field, on_row, st);
  push_rows(L, st);
  if (done != len || st->oom) return push_failure(L, st, csv_error(&st->p));
  return 2;
}

/* parser:finish() -> rows, lines [, err]: the last record, when the input
** does not end with a newline. */
static int parser_finish(lua_State *L) {
  csv_state *st = check_parser(L);
  int rc;
  if (st->failed) luaL_error(L, "the CSV parser stopped at an error");
  rc = csv_fini(&st->p, on_field, on_row, st);
  push_rows(L, st);
  if (rc != 0 || st->oom) return push_failure(L, st, rc != 0 ? csv_error(&st->p) : CSV_ENOMEM);
  return 2;
}

/* parser:close(): free libcsv's buffers and ours. Also __gc and __close. */
static int parser_close(lua_State *L) {
  csv_state *st = luaL_checkudata(L, 1, PARSER_MT);
  release(st);
  return 0;
}

static int parser_tostring(lua_State *L) {
  csv_state *st = luaL_checkudata(L, 1, PARSER_MT);
  lua_pushfstring(L, "ghl.csv.parser (%s, line %d)", st->open ? "open" : "closed", (int)st->line);
  return 1;
}

/* ---- Writing ---- */

/* Does libcsv trim c around an unquoted field (its default is_space)? */
static int is_blank(char c) {
  return c == ' ' || c == '\t';
}

/* format(fields, n, delim, quote) -> one record: fields 1..n (strings, or
** nil for empty) joined by delim, each quoted (quotes doubled, by
** csv_write2) when it holds the delimiter, the quote, CR or LF, or begins
** or ends with a space or a tab (libcsv trims those around unquoted
** fields). A record of one empty field is written as two
** quotes: an empty line would be a blank line, which readers skip. A
** first field that starts with a UTF-8 byte order mark is quoted, so that
** at the start of a file the mark is not taken for the file's own.
** Stack: +1. */
static int csv_format(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 2), i;
  size_t dl, ql;
  const char *delim = luaL_optlstring(L, 3, ",", &dl);
  const char *quote = luaL_optlstring(L, 4, "\"", &ql);
  luaL_Buffer b;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argcheck(L, dl == 1, 3, "must be one character");
  luaL_argcheck(L, ql == 1, 4, "must be one character");
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    size_t len, k;
    const char *s;
    int needs = 0;
    if (i > 1) luaL_addchar(&b, delim[0]);
    if (lua_rawgeti(L, 1, i) == LUA_TNIL) {
      lua_pop(L, 1);
      if (n == 1) { luaL_addchar(&b, quote[0]); luaL_addchar(&b, quote[0]); }
      continue;
    }
    s = lua_tolstring(L, -1, &len);
    if (s == NULL) return luaL_error(L, "field %d is a %s, not a string", (int)i, luaL_typename(L, -1));
    for (k = 0; k < len && !needs; k++)
      needs = s[k] == delim[0] || s[k] == quote[0] || s[k] == '\r' || s[k] == '\n';
    if (len > 0 && (is_blank(s[0]) || is_blank(s[len - 1]))) needs = 1;
    if (len == 0 && n == 1) needs = 1;
    if (i == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) needs = 1;
    if (needs) {
      /* csv_write2 writes at most 2 + 2*len bytes, into a scratch userdata
      ** (collected, so a raise cannot leak it); the quoted copy replaces
      ** the value, keeping the stack balanced for luaL_addvalue */
      size_t cap = 2 * len + 2, w;
      char *out = lua_newuserdatauv(L, cap, 0);          /* value scratch */
      w = csv_write2(out, cap, s, len, (unsigned char)quote[0]);
      lua_pushlstring(L, out, w);                        /* value scratch quoted */
      lua_replace(L, -3);                                /* quoted scratch */
      lua_pop(L, 1);                                     /* quoted */
    }
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

static const luaL_Reg parser_methods[] = {
  {"feed", parser_feed},
  {"finish", parser_finish},
  {"close", parser_close},
  {NULL, NULL}
};

static const luaL_Reg parser_meta[] = {
  {"__gc", parser_close},
  {"__close", parser_close},
  {"__tostring", parser_tostring},
  {NULL, NULL}
};

static const luaL_Reg csv_funcs[] = {
  {"parser", csv_new_parser},
  {"format", csv_format},
  {NULL, NULL}
};

int luaopen_ghl_csv(lua_State *L) {
  ghl_lib_need(L, &ghl_csv_lib);   /* libcsv, opened here (lib_csv.h) */
  luaL_newmetatable(L, PARSER_MT);
  luaL_setfuncs(L, parser_meta, 0);
  luaL_newlib(L, parser_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, csv_funcs);
  return 1;
}
