/*
** ref_multi URL N C: N GETs of URL with at most C in flight on one curl
** multi handle; C easy handles, each re-added as soon as its transfer is
** done (the multi's connection cache keeps the connections, or the HTTP/2
** streams, alive). The reference of workload 3 in bench/api.lua; built as
** ref_multi_decode, each answer decoded too (ref.h).
*/
#include "ref.h"

int main(int argc, char **argv) {
  struct curl_slist *hdrs;
  CURLM *multi;
  CURL **easy;
  struct body *bodies;
  long n, c, started = 0, done = 0, i;
  if (argc != 4) die("usage", "ref_multi URL N C");
  n = ref_count(argv[2]);
  c = ref_count(argv[3]);
  if (c > n) c = n;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  hdrs = ref_headers();
  multi = curl_multi_init();
  easy = calloc((size_t)c, sizeof *easy);
  bodies = calloc((size_t)c, sizeof *bodies);
  if (easy == NULL || bodies == NULL) die("calloc", "out of memory");
  for (i = 0; i < c; i++) {
    easy[i] = curl_easy_init();
    ref_setup(easy[i], argv[1], hdrs, &bodies[i]);
    curl_multi_add_handle(multi, easy[i]);
    started++;
  }
  while (done < n) {
    int running, left;
    CURLMsg *msg;
    curl_multi_perform(multi, &running);
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
      struct body *b;
      CURL *e = msg->easy_handle;
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&b);
      ref_check(e, msg->data.result, b);
      done++;
      curl_multi_remove_handle(multi, e);
      if (started < n) {
        b->len = 0;
        curl_multi_add_handle(multi, e);
        started++;
      }
    }
    if (done < n) curl_multi_poll(multi, NULL, 0, 1000, NULL);
  }
  for (i = 0; i < c; i++) {
    curl_easy_cleanup(easy[i]);
    free(bodies[i].data);
  }
  curl_multi_cleanup(multi);
  curl_slist_free_all(hdrs);
  free(easy);
  free(bodies);
  curl_global_cleanup();
  return 0;
}
