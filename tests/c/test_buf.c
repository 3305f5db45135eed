/* Unit tests for the byte buffer and secret redaction. */
#include <string.h>

#include "buf.h"
#include "check.h"

int main(void) {
  ghl_buf b = {0};
  int i, ok = 1;

  test_cond("empty buffer has no data", b.data == NULL && b.len == 0);
  for (i = 0; i < 100000; i++) ok &= ghl_buf_add(&b, "abc", 3) == 0;
  test_cond("grows to 300000 bytes", ok && b.len == 300000);
  test_cond("stays NUL-terminated", b.data[b.len] == '\0');
  test_cond("keeps content", memcmp(b.data + 299997, "abc", 3) == 0);
  ghl_buf_free(&b);
  test_cond("free resets", b.data == NULL && b.len == 0 && b.cap == 0);

  ghl_buf_add(&b, "\0x", 2);
  test_cond("binary bytes kept", b.len == 2 && b.data[0] == '\0' && b.data[1] == 'x');
  ghl_buf_free(&b);

  ghl_buf_addredacted(&b, "eyJhbGciOiJSUzI1NiJ9.secret.abcd", 32);
  test_cond("secret shown as ellipsis and last four", strcmp(b.data, "\xe2\x80\xa6" "abcd") == 0);
  ghl_buf_free(&b);
  ghl_buf_addredacted(&b, "short", 5);
  test_cond("short secret shows nothing of itself", strcmp(b.data, "\xe2\x80\xa6") == 0);
  ghl_buf_free(&b);

  return test_report();
}
