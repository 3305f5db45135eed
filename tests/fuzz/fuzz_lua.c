/*
** The libFuzzer harness for ghlua's parsers of outside input. One harness,
** linked once per target: the binary fuzz_NAME builds a Lua state the way
** ghlua does (ghl_newstate: the standard libraries, the native modules and
** the embedded lua/ tree), loads tests/fuzz/driver.lua, which loads
** tests/fuzz/targets/NAME.lua, and calls the target's function with each
** input. An input is a finding when it crashes, trips ASan or UBSan, runs
** out of time or memory, or when the target raises anything but a
** ghl.error (a traceback is a bug); the driver reports those and this file
** aborts, so libFuzzer saves the input.
**
** libFuzzer sees the C code through clang's instrumentation, but the Lua
** VM interprets the lua/ tree without any. A line hook therefore bumps a
** counter for each (previous line, line) edge of Lua code, in an array in
** the __libfuzzer_extra_counters section, which libFuzzer reads as extra
** coverage. GHLUA_FUZZ_LUA_COVERAGE=0 turns it off (to measure what it
** adds); GHLUA_FUZZ_LINES=FILE writes the Lua lines run (source:line) to
** FILE at exit, to measure coverage (tests/fuzz/coverage.sh).
**
** The Lua module "fuzz" gives targets what they cannot do in Lua:
**   fuzz.serve{resp1, resp2, ...} -> port: a loopback HTTP server (a
**     thread) answers each connection with the next raw response, then
**     the last one again; after MAX_SERVED requests for one serve it
**     closes connections unanswered
**   fuzz.served() -> requests answered since the last serve
**   fuzz.last_request() -> the raw bytes of the last request since then
**   fuzz.tmpdir() -> a private directory, removed at exit
*/
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lualib.h>

#include "error.h"
#include "host.h"

#define MAX_SERVED 100
#define MAX_REQUEST (256 * 1024)

/* ---- Lua coverage as libFuzzer extra counters ---- */

#define NCOUNTERS (1 << 16)

__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t lua_counters[NCOUNTERS];

static uint32_t prev_loc;
static int count_edges = 1;

/* FNV-1a of at most 64 bytes of a chunk's source name. */
static uint32_t hash_source(const char *s) {
  uint32_t h = 2166136261u;
  int i;
  for (i = 0; s[i] && i < 64; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* ---- The Lua lines run (GHLUA_FUZZ_LINES=FILE), to measure coverage ---- */

#define NLINES (1 << 16)

static struct { char *source; int line; } lines_seen[NLINES];
static const char *lines_file;

/* Remember (source, line) of a chunk loaded from a file ("@..."). */
static void note_line(const char *source, uint32_t h, int line) {
  uint32_t i = (h ^ (uint32_t)line * 2654435761u) % NLINES, n;
  if (source[0] != '@') return;
  for (n = 0; n < NLINES; n++, i = (i + 1) % NLINES) {
    if (lines_seen[i].source == NULL) {
      lines_seen[i].source = strdup(source + 1);
      lines_seen[i].line = line;
      return;
    }
    if (lines_seen[i].line == line && strcmp(lines_seen[i].source, source + 1) == 0) return;
  }
}

/* atexit: write "source:line" per line run to lines_file. */
static void write_lines(void) {
  FILE *f = fopen(lines_file, "w");
  int i;
  if (f == NULL) return;
  for (i = 0; i < NLINES; i++)
    if (lines_seen[i].source) fprintf(f, "%s:%d\n", lines_seen[i].source, lines_seen[i].line);
  fclose(f);
}

/* Line hook: count the edge from the previous line to this one. A chunk
** is known by the address of its source string, which lives as long as
** its functions: cheaper than hashing the name on every line. */
static void line_hook(lua_State *L, lua_Debug *ar) {
  uint32_t h, loc;
  if (ar->event != LUA_HOOKLINE || !lua_getinfo(L, "S", ar)) return;
  if (lines_file) note_line(ar->source, hash_source(ar->source), ar->currentline);
  if (!count_edges) return;
  h = (uint32_t)(((uintptr_t)ar->source >> 4) * 2246822519u);
  loc = h ^ ((uint32_t)ar->currentline * 2654435761u);
  lua_counters[(loc ^ (prev_loc >> 1)) % NCOUNTERS]++;
  prev_loc = loc;
}

/* ---- The loopback HTTP server ---- */

static struct {
  pthread_mutex_t mu;
  int fd, port;
  char **resp;            /* raw responses of the current serve, owned here */
  size_t *len;
  int n, next, served;
  char *last;             /* the last request received, owned here */
  size_t lastlen;
} srv = {PTHREAD_MUTEX_INITIALIZER, -1, 0, NULL, NULL, 0, 0, 0, NULL, 0};

/* Read one request (head, then Content-Length bytes of body) from c.
** Returns the request (malloc'd, NUL-terminated, its length in *len), or
** NULL when the peer went away or took too long. */
static char *read_request(int c, size_t *len) {
  char *buf = malloc(MAX_REQUEST + 1);
  size_t got = 0, need = 0;
  char *end = NULL;
  if (buf == NULL) return NULL;
  while (got < MAX_REQUEST) {
    ssize_t k = recv(c, buf + got, MAX_REQUEST - got, 0);
    if (k <= 0) break;
    got += (size_t)k;
    buf[got] = '\0';
    if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
      const char *cl = strcasestr(buf, "\ncontent-length:");
      need = (size_t)(end - buf) + 4;
      if (cl && cl < end) need += strtoul(cl + 16, NULL, 10);
    }
    if (end && got >= need) {
      *len = got;
      return buf;
    }
  }
  free(buf);
  return NULL;
}

static void *serve_loop(void *ud) {
  (void)ud;
  for (;;) {
    struct timeval tv = {2, 0};
    char *out = NULL, *req;
    size_t n = 0, reqlen = 0;
    int c = accept(srv.fd, NULL, NULL);
    if (c < 0) continue;
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if ((req = read_request(c, &reqlen)) != NULL) {
      pthread_mutex_lock(&srv.mu);
      free(srv.last);
      srv.last = req;
      srv.lastlen = reqlen;
      if (srv.n > 0 && srv.served < MAX_SERVED) {
        int i = srv.next < srv.n ? srv.next++ : srv.n - 1;
        srv.served++;
        if ((out = malloc(srv.len[i] + 1)) != NULL) {
          memcpy(out, srv.resp[i], srv.len[i]);
          n = srv.len[i];
        }
      }
      pthread_mutex_unlock(&srv.mu);
      if (out) send(c, out, n, MSG_NOSIGNAL);
      free(out);
      shutdown(c, SHUT_WR);
    }
    close(c);
  }
  return NULL;
}

/* Bind 127.0.0.1:0 and start the server thread, once. Returns 0 or -1. */
static int start_server(void) {
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  pthread_t th;
  int one = 1;
  if (srv.fd >= 0) return 0;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if ((srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) return -1;
  setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(srv.fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(srv.fd, 64) != 0 ||
      getsockname(srv.fd, (struct sockaddr *)&a, &alen) != 0) {
    close(srv.fd);
    srv.fd = -1;
    return -1;
  }
  srv.port = ntohs(a.sin_port);
  if (pthread_create(&th, NULL, serve_loop, NULL) != 0) return -1;
  pthread_detach(th);
  return 0;
}

/* Free the responses of the last serve. Call with srv.mu held. */
static void clear_responses(void) {
  int i;
  for (i = 0; i < srv.n; i++) free(srv.resp[i]);
  free(srv.resp);
  free(srv.len);
  srv.resp = NULL;
  srv.len = NULL;
  srv.n = srv.next = srv.served = 0;
  free(srv.last);
  srv.last = NULL;
  srv.lastlen = 0;
}

/* fuzz.serve{resp, ...} -> port. The strings are copied. */
static int fuzz_serve(lua_State *L) {
  int i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (int)luaL_len(L, 1);
  if (start_server() != 0) return luaL_error(L, "fuzz.serve: cannot listen: %s", strerror(errno));
  pthread_mutex_lock(&srv.mu);
  clear_responses();
  srv.resp = calloc((size_t)n + 1, sizeof *srv.resp);
  srv.len = calloc((size_t)n + 1, sizeof *srv.len);
  for (i = 0; srv.resp && srv.len && i < n; i++) {
    size_t len;
    const char *s;
    lua_rawgeti(L, 1, i + 1);
    s = lua_tolstring(L, -1, &len);
    if (s && (srv.resp[srv.n] = malloc(len ? len : 1)) != NULL) {
      memcpy(srv.resp[srv.n], s, len);
      srv.len[srv.n++] = len;
    }
    lua_pop(L, 1);
  }
  pthread_mutex_unlock(&srv.mu);
  lua_pushinteger(L, srv.port);
  return 1;
}

/* fuzz.served() -> number of requests answered since the last serve. */
static int fuzz_served(lua_State *L) {
  int n;
  pthread_mutex_lock(&srv.mu);
  n = srv.served;
  pthread_mutex_unlock(&srv.mu);
  lua_pushinteger(L, n);
  return 1;
}

/* fuzz.last_request() -> the raw bytes of the last request received since
** the last serve, or nil. */
static int fuzz_last_request(lua_State *L) {
  pthread_mutex_lock(&srv.mu);
  if (srv.last) lua_pushlstring(L, srv.last, srv.lastlen);
  else lua_pushnil(L);
  pthread_mutex_unlock(&srv.mu);
  return 1;
}

/* ---- The private directory ---- */

static char tmpdir[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void remove_tmpdir(void) {
  if (tmpdir[0]) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Make the private directory BASE/ghlua-fuzz.PID under /dev/shm (no disk
** writes, fsync is free) or TMPDIR. A finding ends the process without
** atexit, so the directories of processes that are gone are removed
** first. Returns 0 or -1. */
static int make_tmpdir(void) {
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
  DIR *d;
  struct dirent *e;
  if (base == NULL || *base == '\0') base = "/tmp";
  if ((d = opendir(base)) != NULL) {
    while ((e = readdir(d)) != NULL) {
      long pid;
      char *end;
      if (strncmp(e->d_name, "ghlua-fuzz.", 11) != 0) continue;
      pid = strtol(e->d_name + 11, &end, 10);
      if (*end || pid <= 0) continue;
      /* keep a live process's (or one we may not signal: errno EPERM) */
      if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
      snprintf(tmpdir, sizeof tmpdir, "%s/%s", base, e->d_name);
      remove_tmpdir();
    }
    closedir(d);
  }
  snprintf(tmpdir, sizeof tmpdir, "%s/ghlua-fuzz.%ld", base, (long)getpid());
  if (mkdir(tmpdir, 0700) != 0) return -1;
  atexit(remove_tmpdir);
  return 0;
}

static int fuzz_tmpdir(lua_State *L) {
  lua_pushstring(L, tmpdir);
  return 1;
}

static const luaL_Reg fuzz_funcs[] = {
  {"serve", fuzz_serve},
  {"served", fuzz_served},
  {"last_request", fuzz_last_request},
  {"tmpdir", fuzz_tmpdir},
  {NULL, NULL}
};

static int luaopen_fuzz(lua_State *L) {
  luaL_newlib(L, fuzz_funcs);
  return 1;
}

/* ---- libFuzzer entry points ---- */

static lua_State *L;
static int entry_ref = LUA_NOREF;

static void die(const char *what) {
  fprintf(stderr, "fuzz: %s\n", what);
  exit(1);
}

/* The target name from argv[0]: ".../fuzz_csv" -> "csv". */
static const char *target_name(const char *argv0) {
  const char *base = strrchr(argv0, '/');
  base = base ? base + 1 : argv0;
  if (strncmp(base, "fuzz_", 5) != 0) die("the binary must be named fuzz_TARGET");
  return base + 5;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *dir = getenv("GHLUA_FUZZ_DIR");
  const char *cov = getenv("GHLUA_FUZZ_LUA_COVERAGE");
  char path[4096];
  (void)argc;
  if (dir == NULL || *dir == '\0') dir = GHLUA_FUZZ_DIR;
  if (make_tmpdir() != 0) die("cannot make a temporary directory");
  /* nothing of the user's: no store, no proxy for the loopback server */
  setenv("GHLUA_HOME", tmpdir, 1);
  setenv("NO_COLOR", "1", 1);
  setenv("no_proxy", "127.0.0.1,localhost", 1);
  setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  unsetenv("GHLUA_TRACE");
  unsetenv("GHLUA_LUA_DIR");
  unsetenv("GHLUA_DEBUG");
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) die("cannot initialise libcurl");
  if ((L = ghl_newstate()) == NULL) die("cannot create a Lua state");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_fuzz);
  lua_setfield(L, -2, "fuzz");
  lua_pop(L, 1);
  snprintf(path, sizeof path, "%s/driver.lua", dir);
  if (luaL_loadfilex(L, path, "t") != LUA_OK) die(lua_tostring(L, -1));
  lua_pushstring(L, target_name((*argv)[0]));
  lua_pushstring(L, dir);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) die(luaL_tolstring(L, -1, NULL));
  if (!lua_isfunction(L, -1)) die("driver.lua must return a function");
  entry_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  count_edges = cov == NULL || strcmp(cov, "0") != 0;
  lines_file = getenv("GHLUA_FUZZ_LINES");
  if (lines_file && *lines_file) atexit(write_lines);
  else lines_file = NULL;
  if (count_edges || lines_file) lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  return 0;
}

/* Run one input through the driver's function: it returns nil, or the
** description of a finding, which is printed before the abort. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int top = lua_gettop(L);
  prev_loc = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, entry_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isnil(L, -1)) {
    fprintf(stderr, "\n==ghlua-fuzz== finding: %s\n", luaL_tolstring(L, -1, NULL));
    fflush(stderr);
    remove_tmpdir();
    abort();
  }
  lua_settop(L, top);
  /* free this input's garbage now, so the mallocs and frees of a run
  ** balance and libFuzzer's leak check (LeakSanitizer after any run that
  ** allocated more than it freed) stays rare */
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
