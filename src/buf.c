/* Growable byte buffer and secret redaction. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Room for n more bytes and the NUL: exactly that much (exact), or the
** capacity doubled from 256 until it fits. -1 on overflow or no memory
** (b unchanged). */
static int grow(ghl_buf *b, size_t n, int exact) {
  size_t need, cap;
  char *d;
  if (n > ((size_t)-1) / 2 - b->len) return -1;
  need = b->len + n + 1;
  if (need <= b->cap) return 0;
  cap = exact ? need : b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  d = realloc(b->data, cap);
  if (d == NULL) return -1;
  if (b->data == NULL) d[0] = '\0';
  b->data = d;
  b->cap = cap;
  return 0;
}

int ghl_buf_add(ghl_buf *b, const void *p, size_t n) {
  if (grow(b, n, 0) != 0) return -1;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int ghl_buf_reserve(ghl_buf *b, size_t n) {
  return grow(b, n, 1);
}

int ghl_buf_addstr(ghl_buf *b, const char *s) {
  return ghl_buf_add(b, s, strlen(s));
}

void ghl_buf_free(ghl_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int ghl_buf_addredacted(ghl_buf *b, const char *s, size_t n) {
  if (ghl_buf_addstr(b, "\xe2\x80\xa6") != 0) return -1;
  if (n < 12) return 0;
  return ghl_buf_add(b, s + n - 4, 4);
}
