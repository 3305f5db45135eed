/*
** ref_seq URL N: N sequential GETs of URL with one reused easy handle (one
** keep-alive connection), the reference of workload 2 in bench/api.lua;
** built as ref_decode, each answer decoded too (ref.h).
*/
#include "ref.h"

int main(int argc, char **argv) {
  struct body b = {0};
  struct curl_slist *hdrs;
  CURL *easy;
  long i, n;
  if (argc != 3) die("usage", "ref_seq URL N");
  n = ref_count(argv[2]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  hdrs = ref_headers();
  easy = curl_easy_init();
  ref_setup(easy, argv[1], hdrs, &b);
  for (i = 0; i < n; i++) {
    b.len = 0;
    ref_check(easy, curl_easy_perform(easy), &b);
  }
  curl_easy_cleanup(easy);
  curl_slist_free_all(hdrs);
  free(b.data);
  curl_global_cleanup();
  return 0;
}
