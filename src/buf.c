/* Growable byte buffer and secret redaction. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int ghl_buf_add(ghl_buf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    char *d;
    while (cap < b->len + n + 1) {
      if (cap > ((size_t)-1) / 2) return -1;
      cap *= 2;
    }
    d = realloc(b->data, cap);
    if (d == NULL) return -1;
    b->data = d;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int ghl_buf_reserve(ghl_buf *b, size_t n) {
  char *d;
  if (b->len + n + 1 <= b->cap) return 0;
  if (n > ((size_t)-1) / 2 - b->len) return -1;
  d = realloc(b->data, b->len + n + 1);
  if (d == NULL) return -1;
  if (b->data == NULL) d[0] = '\0';
  b->data = d;
  b->cap = b->len + n + 1;
  return 0;
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
