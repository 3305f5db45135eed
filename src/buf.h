/* A growable byte buffer for libcurl callbacks (getinmemory pattern). */
#ifndef GHL_BUF_H
#define GHL_BUF_H

#include <stddef.h>

typedef struct {
  char *data;   /* owned; NUL-terminated when non-NULL */
  size_t len;
  size_t cap;
} ghl_buf;

/* Append n bytes; returns 0 on success, -1 when out of memory (the buffer is
** unchanged). */
int ghl_buf_add(ghl_buf *b, const void *p, size_t n);
int ghl_buf_addstr(ghl_buf *b, const char *s);
/* Make room for n more bytes at once (fewer reallocations when the size
** is known); returns 0, or -1 when out of memory (the buffer unchanged). */
int ghl_buf_reserve(ghl_buf *b, size_t n);
void ghl_buf_free(ghl_buf *b);

/* Write "…" plus the last four characters of the n-byte secret s into b
** (just "…" when the secret is shorter than 12 bytes, so most of it never
** shows). This is how every secret is displayed. */
int ghl_buf_addredacted(ghl_buf *b, const char *s, size_t n);

#endif
