/*
** ghl.server: a small loopback HTTP(S) server for OAuth redirects and mock
** APIs, over libmicrohttpd (MHD).
**
** MHD runs in external-poll mode with epoll and no threads of its own: the
** Lua state is single-threaded, so requests are only served inside
** srv:run() / srv:step(), and the callbacks use the lua_State given to
** them. One server may listen on several addresses (127.0.0.1 and ::1 for
** "localhost"): one MHD daemon per address, sharing port, handler and loop.
**
** Errors: bad arguments raise; bind and TLS failures return nil, ghl.error
** (kind "bind" / "tls"); SIGINT makes run/step return nil, ghl.error kind
** "interrupted". A failing Lua handler never unwinds through MHD: it runs
** under lua_pcall, is reported on stderr and answered with a JSON 500.
*/
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include <lua.h>
#include <lauxlib.h>

#include "error.h"
#include "host.h"
#include "lib_mhd.h"

#define SERVER_MT        "ghl.server"
#define MAX_DAEMONS      8
#define DEFAULT_MAX_BODY (32 << 20)
#define MAX_WAIT_MS      500    /* longest poll, so SIGINT is never missed */
#define DRAIN_SECONDS    2.0    /* after stop: time to flush queued answers */

enum action { REPLY, CLOSE, RESET };

/* One HTTP request: MHD's per-request context, freed by complete_request. */
struct request {
  struct server *srv;
  struct MHD_Connection *conn;
  const char *method, *url;     /* MHD's, valid during the access call only */
  char *body;                   /* the upload so far (malloc'd) */
  size_t len, cap;
  int too_big, called, queued, suspended;
  enum action action;
  unsigned status;
  struct MHD_Response *resp;    /* prepared answer, owned until queued */
  double delay, deadline;
  struct request *prev, *next;  /* in srv->delayed while suspended */
};

struct server {
  struct MHD_Daemon *daemon[MAX_DAEMONS];
  int ndaemon, port;
  char url[80];
  char *cert, *key;             /* PEM copies, alive as long as the daemons */
  lua_State *L;                 /* the state in run/step, else NULL */
  int handler;                  /* registry reference to the Lua handler */
  size_t max_body;
  int running, stopped, close_pending;
  int sending;                  /* answers queued but not yet completed */
  struct request *delayed;      /* suspended requests, waiting for deadline */
  char log[256];                /* last message MHD logged */
};

/* An address to listen on; optional: ::1 from "localhost", may fail. */
struct bind_spec { const char *name; int optional; };

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds from now until t, for poll(), capped at MAX_WAIT_MS. */
static int ms_until(double t)
{
  double d = (t - now()) * 1000.0;
  return d <= 0 ? 0 : d >= MAX_WAIT_MS ? MAX_WAIT_MS : (int)d + 1;
}

/* MHD's logger: keep the last message (it explains a failed start). */
static void log_message(void *cls, const char *fmt, va_list ap)
{
  struct server *s = cls;
  size_t n;
  vsnprintf(s->log, sizeof s->log, fmt, ap);
  n = strlen(s->log);
  while (n > 0 && isspace((unsigned char)s->log[n - 1]))
    s->log[--n] = '\0';
}

/* ---- Requests ---- */

static void unlink_request(struct request *r)
{
  if (!r->suspended)
    return;
  if (r->prev) r->prev->next = r->next;
  else r->srv->delayed = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  r->suspended = 0;
}

/* MHD's completion callback: the request is over (answered, or its
** connection died or was shut down). Frees r and all it still owns. */
static void complete_request(void *cls, struct MHD_Connection *c,
                             void **ctx, enum MHD_RequestTerminationCode code)
{
  struct request *r = *ctx;
  (void)cls; (void)c; (void)code;
  if (!r)
    return;
  unlink_request(r);
  if (r->queued)
    r->srv->sending--;
  if (r->resp)
    MHD_destroy_response(r->resp);
  free(r->body);
  free(r);
  *ctx = NULL;
}

/* Make r answer with a canned JSON error (static body) instead. */
static void set_error(struct request *r, unsigned status)
{
  static const char e413[] =
    "{\"statusCode\":413,\"message\":\"Payload Too Large\"}";
  static const char e500[] =
    "{\"statusCode\":500,\"message\":\"Internal Server Error\"}";
  const char *b = status == 413 ? e413 : e500;
  if (r->resp)
    MHD_destroy_response(r->resp);
  r->resp = MHD_create_response_from_buffer(strlen(b), (void *)b,
                                            MHD_RESPMEM_PERSISTENT);
  if (r->resp)
    MHD_add_response_header(r->resp, "Content-Type", "application/json");
  r->status = status;
  r->action = REPLY;
  r->delay = 0;
}

/* Carry out r's action on its connection: queue the prepared response
** (released here; MHD keeps its own reference), or drop the connection.
** For RESET, SO_LINGER {1,0} alone is not enough, as MHD shuts the socket
** down for writing (a FIN) before closing it: connect() with AF_UNSPEC
** makes Linux abort the TCP connection with an RST at once. */
static enum MHD_Result finish(struct request *r)
{
  enum MHD_Result ok;
  if (r->action == RESET) {
    const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct linger lg = { 1, 0 };
    struct sockaddr sa = { .sa_family = AF_UNSPEC };
    if (ci) {
      setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      connect(ci->connect_fd, &sa, sizeof sa);
    }
  }
  if (r->action != REPLY || !r->resp)
    return MHD_NO;
  ok = MHD_queue_response(r->conn, r->status, r->resp);
  MHD_destroy_response(r->resp);
  r->resp = NULL;
  if (ok == MHD_YES) {
    r->queued = 1;
    r->srv->sending++;
  }
  return ok;
}

/* ---- Calling the Lua handler ---- */

struct pair { const char *k, *v; size_t kn, vn; };
struct pairs { struct pair *p; size_t n, max; };

static enum MHD_Result add_pair(void *cls, enum MHD_ValueKind kind,
                                const char *k, size_t kn,
                                const char *v, size_t vn)
{
  struct pairs *ps = cls;
  (void)kind;
  if (ps->n < ps->max) {
    struct pair p = { k, v ? v : "", kn, v ? vn : 0 };
    ps->p[ps->n++] = p;
  }
  return MHD_YES;
}

/* Push a table of the connection's headers (names lower-cased, repeats
** joined with ", ") or query arguments (the last repeat wins), then a table
** {name={v1, v2, ...}} of all values. MHD's pointers are first copied into
** a Lua-owned array, so no Lua error can unwind through MHD's iterator.
** Stack: +2. */
static void push_values(lua_State *L, struct MHD_Connection *c,
                        enum MHD_ValueKind kind)
{
  int hdr = kind == MHD_HEADER_KIND, t, all;
  int n = MHD_get_connection_values_n(c, kind, NULL, NULL);
  struct pairs ps = { NULL, 0, n > 0 ? (size_t)n : 0 };
  size_t i, j;
  ps.p = lua_newuserdatauv(L, ps.max * sizeof *ps.p, 0);   /* pairs */
  MHD_get_connection_values_n(c, kind, add_pair, &ps);
  lua_newtable(L);
  lua_newtable(L);                                        /* pairs t all */
  all = lua_gettop(L);
  t = all - 1;
  for (i = 0; i < ps.n; i++) {
    struct pair *p = &ps.p[i];
    luaL_Buffer b;
    char *k = luaL_buffinitsize(L, &b, p->kn);
    for (j = 0; j < p->kn; j++)
      k[j] = hdr ? (char)tolower((unsigned char)p->k[j]) : p->k[j];
    luaL_pushresultsize(&b, p->kn);                       /* ... k */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, all) != LUA_TTABLE) {               /* ... k list? */
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      lua_rawset(L, all);                                 /* ... k list */
    }
    lua_pushlstring(L, p->v, p->vn);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pushvalue(L, -2);                                 /* ... k list k */
    if (hdr && lua_rawget(L, t) == LUA_TSTRING) {         /* ... k list old */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, p->v, p->vn);
      lua_concat(L, 3);                                   /* ... k list v */
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, p->v, p->vn);                    /* ... k list v */
    }
    lua_remove(L, -2);                                    /* ... k v */
    lua_rawset(L, t);
  }
  lua_remove(L, t - 1);                                   /* t all */
}

/* Read an optional numeric field of the table at t; raise if it is there
** but not a number (or not an integer, with `integer`). */
static lua_Number opt_field(lua_State *L, int t, const char *k,
                            lua_Number def, int integer)
{
  int ok = 1;
  lua_Number n = def;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    n = integer ? (lua_Number)lua_tointegerx(L, -1, &ok)
                : lua_tonumberx(L, -1, &ok);
    if (!ok)
      luaL_error(L, "field '%s' must be %s", k,
                 integer ? "an integer" : "a number");
  }
  lua_pop(L, 1);
  return n;
}

/* Content reader for truncate=N: the first N bytes of the body, then an
** error, on which MHD aborts the connection in mid-body. */
struct part { size_t n; char data[]; };

static ssize_t read_part(void *cls, uint64_t pos, char *buf, size_t max)
{
  struct part *p = cls;
  size_t k;
  if (pos >= p->n)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  k = p->n - (size_t)pos < max ? p->n - (size_t)pos : max;
  memcpy(buf, p->data + pos, k);
  return (ssize_t)k;
}

/* Turn the handler's result (top of the stack) into r->action, r->status,
** r->delay and r->resp. Raises on a malformed result; r->resp belongs to r
** as soon as it is set, so nothing leaks on a raise. Stack: 0. */
static void take_result(lua_State *L, struct request *r)
{
  int t = lua_gettop(L);
  size_t len = 0;
  const char *body = "";
  lua_Number status, trunc;
  if (!lua_istable(L, t))
    luaL_error(L, "handler returned %s, expected a table",
               luaL_typename(L, t));
  lua_getfield(L, t, "reset");
  lua_getfield(L, t, "close");
  r->action = lua_toboolean(L, -2) ? RESET
            : lua_toboolean(L, -1) ? CLOSE : REPLY;
  r->delay = opt_field(L, t, "delay", 0, 0);
  status = opt_field(L, t, "status", 200, 1);
  trunc = opt_field(L, t, "truncate", -1, 1);
  if (status < 100 || status > 999)
    luaL_error(L, "invalid status %d", (int)status);
  r->status = (unsigned)status;
  if (lua_getfield(L, t, "body") != LUA_TNIL
      && !(body = lua_tolstring(L, -1, &len)))
    luaL_error(L, "field 'body' must be a string");
  if (trunc >= 0) {
    size_t n = trunc < (lua_Number)len ? (size_t)trunc : len;
    struct part *p = malloc(sizeof *p + n);
    if (p) {
      p->n = n;
      memcpy(p->data, body, n);
      if (!(r->resp = MHD_create_response_from_callback(len, 64 * 1024,
                                                        read_part, p, free)))
        free(p);
    }
  } else
    r->resp = MHD_create_response_from_buffer(len, (void *)body,
                                              MHD_RESPMEM_MUST_COPY);
  if (!r->resp)
    luaL_error(L, "cannot create response (out of memory?)");
  if (lua_getfield(L, t, "headers") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {                     /* ... headers k v */
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                     : NULL;
      const char *v = lua_tostring(L, -1);
      if (!k || !v)
        luaL_error(L, "response headers must map strings to strings");
      if (strcasecmp(k, "content-length") != 0   /* MHD sets it */
          && MHD_add_response_header(r->resp, k, v) != MHD_YES)
        luaL_error(L, "invalid response header '%s'", k);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1))
    luaL_error(L, "field 'headers' must be a table");
  lua_settop(L, t);
}

/* The protected part of a request: build req, call the handler, read its
** result. Argument: the struct request, as a light userdata. Stack: 0. */
static int call_handler(lua_State *L)
{
  struct request *r = lua_touserdata(L, 1);
  const union MHD_ConnectionInfo *ci =
    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  char addr[INET6_ADDRSTRLEN] = "";
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->srv->handler);   /* r handler */
  lua_createtable(L, 0, 8);                             /* r handler req */
  lua_pushstring(L, r->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, r->url);
  lua_setfield(L, -2, "path");
  lua_pushlstring(L, r->body ? r->body : "", r->len);
  lua_setfield(L, -2, "body");
  free(r->body);                                        /* Lua has a copy */
  r->body = NULL;
  r->len = r->cap = 0;
  push_values(L, r->conn, MHD_HEADER_KIND);             /* ... req h all */
  lua_pop(L, 1);
  lua_setfield(L, -2, "headers");
  push_values(L, r->conn, MHD_GET_ARGUMENT_KIND);       /* ... req q all */
  lua_setfield(L, -3, "query_all");
  lua_setfield(L, -2, "query");
  if (sa && sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
              addr, sizeof addr);
  else if (sa && sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
              addr, sizeof addr);
  lua_pushstring(L, addr);
  lua_setfield(L, -2, "remote");
  lua_call(L, 1, 1);                                    /* r result */
  take_result(L, r);
  return 0;
}

/* Message handler: the error as a string (honouring __tostring) plus a
** traceback, made printable (ghl_sanitized). An "interrupted" error means the host's SIGINT hook fired in
** the handler and consumed ghl_interrupted: set it again, so that the
** loop stops too. */
static int msghandler(lua_State *L)
{
  if (ghl_iserror(L, 1) && lua_getfield(L, 1, "kind") == LUA_TSTRING
      && strcmp(lua_tostring(L, -1), "interrupted") == 0)
    ghl_interrupted = 1;
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  ghl_sanitized(L, -1, 1);    /* request bytes may be in it; printed below */
  return 1;
}

/* Run the Lua handler for r on the state of the running loop. Never
** raises: on error, report it on stderr and prepare a 500 instead. Not
** after SIGINT: the loop is about to stop. */
static void run_handler(struct server *s, struct request *r)
{
  lua_State *L = s->L;
  int top;
  if (!L || ghl_interrupted || !lua_checkstack(L, LUA_MINSTACK)) {
    set_error(r, 500);
    return;
  }
  top = lua_gettop(L);
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, call_handler);
  lua_pushlightuserdata(L, r);
  if (lua_pcall(L, 1, 0, top + 1) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "ghlua: server handler: %s\n", msg ? msg : "?");
    fflush(stderr);
    set_error(r, 500);
  }
  lua_settop(L, top);
}

/* Append an upload chunk to r->body; past max_body, drop the body and
** mark r too big. Returns 0, or -1 on OOM. */
static int add_upload(struct request *r, const char *data, size_t n)
{
  if (r->too_big || r->queued)
    return 0;
  if (n > r->srv->max_body - r->len) {
    r->too_big = 1;
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    return 0;
  }
  if (r->len + n > r->cap) {
    size_t cap = r->cap * 2 > r->len + n ? r->cap * 2 : r->len + n + 4096;
    char *b = realloc(r->body, cap);
    if (!b)
      return -1;
    r->body = b;
    r->cap = cap;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  return 0;
}

/* MHD's access handler, called several times per request: for the
** headers, for each chunk of upload, at the end (where the Lua handler
** runs), and once more after a delayed request is resumed. */
static enum MHD_Result handle_request(void *cls, struct MHD_Connection *c,
                                      const char *url, const char *method,
                                      const char *version, const char *data,
                                      size_t *size, void **ctx)
{
  struct server *s = cls;
  struct request *r = *ctx;
  (void)version;
  if (!r) {
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    if (!(r = calloc(1, sizeof *r)))
      return MHD_NO;
    r->srv = s;
    r->conn = c;
    *ctx = r;
    if (n > s->max_body) {                  /* refuse before reading it */
      set_error(r, 413);
      return finish(r);
    }
    if (n > 0 && !(r->body = malloc(r->cap = (size_t)n)))
      return MHD_NO;
    return MHD_YES;
  }
  if (*size > 0) {
    if (add_upload(r, data, *size) != 0)
      return MHD_NO;
    *size = 0;
    return MHD_YES;
  }
  if (r->queued)
    return MHD_YES;
  if (r->too_big)
    set_error(r, 413);
  else if (!r->called) {
    r->called = 1;
    r->url = url;
    r->method = method;
    run_handler(s, r);
    if (r->delay > 0) {
      r->deadline = now() + r->delay;
      r->next = s->delayed;
      if (s->delayed)
        s->delayed->prev = r;
      s->delayed = r;
      r->suspended = 1;
      MHD_suspend_connection(c);
      return MHD_YES;
    }
  }
  return finish(r);
}

/* ---- Listening ---- */

/* Return a malloc'd copy of a PEM value: the string itself when it starts
** with "-----BEGIN", else the contents of the file it names. NULL with
** errno set on failure. The caller frees. */
static char *load_pem(const char *v)
{
  FILE *f;
  char *buf = NULL, *b;
  size_t len = 0, cap = 0, n;
  int err = 0;
  if (strncmp(v, "-----BEGIN", 10) == 0)
    return strdup(v);
  if (!(f = fopen(v, "rb")))
    return NULL;
  do {
    if (cap - len < 4096) {
      if (!(b = realloc(buf, cap = cap * 2 + 8192))) {
        err = ENOMEM;
        break;
      }
      buf = b;
    }
    len += n = fread(buf + len, 1, cap - len - 1, f);
  } while (n > 0);
  if (!err && ferror(f))
    err = errno;
  fclose(f);
  if (err) {
    free(buf);
    errno = err;
    return NULL;
  }
  buf[len] = '\0';
  return buf;
}

/* Fill ss with the address literal host and port. Returns its family,
** or 0 if host is not an IPv4/IPv6 literal. */
static int make_addr(const char *host, int port,
                     struct sockaddr_storage *ss, socklen_t *sl)
{
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  memset(ss, 0, sizeof *ss);
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *sl = sizeof *a4;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *sl = sizeof *a6;
  }
  return ss->ss_family;
}

/* Open a non-blocking listening socket on host:port (port 0: ephemeral)
** and store the port it got. Returns the fd, or -1 with errno set. */
static int open_socket(const char *host, int port, int *got)
{
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int one = 1, fd, err, family = make_addr(host, port, &ss, &sl);
  fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, SOMAXCONN) < 0
      || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
    err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  *got = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                 : ((struct sockaddr_in6 *)&ss)->sin6_port);
  return fd;
}

/* "host:port", or "[host]:port" for IPv6, into buf. */
static const char *host_port(char *buf, size_t n, const char *host, int port)
{
  snprintf(buf, n, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
  return buf;
}

/* Start an MHD daemon on the listening socket fd (MHD owns it on success).
** Returns 0, or pushes nil, ghl.error and returns 2. */
static int start_daemon(lua_State *L, struct server *s, const char *host,
                        int fd, int port)
{
  char hp[80];
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG
                 | (strchr(host, ':') ? MHD_USE_IPv6 : 0)
                 | (s->cert ? MHD_USE_TLS : 0);
  struct MHD_Daemon *d;
  s->log[0] = '\0';
  /* Without TLS, the option list ends before the certificate. */
  d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle_request, s,
                       MHD_OPTION_LISTEN_SOCKET, fd,
                       MHD_OPTION_NOTIFY_COMPLETED, complete_request, s,
                       MHD_OPTION_EXTERNAL_LOGGER, log_message, s,
                       s->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
                       s->cert, MHD_OPTION_HTTPS_MEM_KEY, s->key,
                       MHD_OPTION_END);
  if (d) {
    s->daemon[s->ndaemon++] = d;
    return 0;
  }
  if (fcntl(fd, F_GETFD) != -1)   /* whether MHD closed it depends on when */
    close(fd);                    /* it failed; no other thread opens fds */
  return ghl_fail(L, s->cert ? "tls" : "bind", "cannot start %s server on "
                  "%s: %s", s->cert ? "HTTPS" : "HTTP",
                  host_port(hp, sizeof hp, host, port),
                  s->log[0] ? s->log : "libmicrohttpd failed");
}

/* Stop the daemons, free the PEM copies, drop the handler. Idempotent.
** MHD must not be stopped with suspended connections, so delayed requests
** are resumed first; stopping then completes (frees) every request. */
static void close_server(lua_State *L, struct server *s)
{
  while (s->delayed) {
    struct MHD_Connection *c = s->delayed->conn;
    unlink_request(s->delayed);
    MHD_resume_connection(c);
  }
  while (s->ndaemon > 0)
    MHD_stop_daemon(s->daemon[--s->ndaemon]);
  free(s->cert);
  free(s->key);
  s->cert = s->key = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, s->handler);
  s->handler = LUA_NOREF;
}

/* Listen on every address of b on one port (the first one's, if port is
** 0) with a daemon each. Returns 0, or pushes nil, ghl.error and returns 2
** (daemons already started are stopped by the caller's close_server).
** With port 0, if a later address has that port taken, retry anew. */
static int bind_all(lua_State *L, struct server *s,
                    const struct bind_spec *b, int n, int port)
{
  int attempt, i, got, fd, err = 0;
  char hp[80];
  for (attempt = 0; ; attempt++) {
    got = port;
    for (i = 0; i < n; i++) {
      if ((fd = open_socket(b[i].name, got, &got)) >= 0) {
        if (start_daemon(L, s, b[i].name, fd, got))
          return 2;
      } else if (!b[i].optional
                 || (errno != EADDRNOTAVAIL && errno != EAFNOSUPPORT))
        break;
    }
    if (i == n) {
      s->port = got;
      return 0;
    }
    err = errno;
    while (s->ndaemon > 0)
      MHD_stop_daemon(s->daemon[--s->ndaemon]);
    if (port != 0 || i == 0 || err != EADDRINUSE || attempt == 4)
      break;
  }
  return ghl_fail(L, "bind", "cannot listen on %s: %s",
                  host_port(hp, sizeof hp, b[i].name, got), strerror(err));
}

/* Add the address literal host to b, or both loopbacks for "localhost"
** (::1 optional); raise on anything else. */
static void add_host(lua_State *L, const char *host, struct bind_spec *b,
                     int *n)
{
  struct sockaddr_storage ss;
  socklen_t sl;
  int local = strcmp(host, "localhost") == 0;
  if (*n + local >= MAX_DAEMONS)
    luaL_error(L, "too many hosts (at most %d)", MAX_DAEMONS);
  if (!local && !make_addr(host, 0, &ss, &sl))
    luaL_error(L, "host '%s' is not an IP address literal or localhost",
               host);
  b[(*n)++] = (struct bind_spec){ local ? "127.0.0.1" : host, 0 };
  if (local)
    b[(*n)++] = (struct bind_spec){ "::1", 1 };
}

/* server.listen{host=, hosts=, port=, tls={cert=, key=}, handler=,
** max_body=} -> srv | nil, ghl.error. The userdata is created closed,
** then given its handler, PEM copies and daemons; on failure it is closed
** again before returning. */
static int server_listen(lua_State *L)
{
  struct bind_spec b[MAX_DAEMONS];
  struct server *s;
  lua_Number port, max_body;
  int n = 0, i, r;
  const char *first;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  s = lua_newuserdatauv(L, sizeof *s, 0);                 /* opts srv */
  memset(s, 0, sizeof *s);
  s->handler = LUA_NOREF;
  luaL_setmetatable(L, SERVER_MT);
  port = opt_field(L, 1, "port", 0, 1);
  max_body = opt_field(L, 1, "max_body", DEFAULT_MAX_BODY, 1);
  luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port out of range");
  luaL_argcheck(L, max_body >= 0, 1, "max_body must not be negative");
  s->max_body = (size_t)max_body;
  if (lua_getfield(L, 1, "hosts") == LUA_TNIL) {          /* opts srv hosts */
    lua_pop(L, 1);
    lua_createtable(L, 1, 0);
    if (lua_getfield(L, 1, "host") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushliteral(L, "127.0.0.1");
    }
    lua_rawseti(L, -2, 1);
  }
  luaL_argcheck(L, lua_istable(L, 3), 1, "field 'hosts' must be a list");
  for (i = 1; lua_geti(L, 3, i) != LUA_TNIL; i++) {      /* ... hosts h */
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1,
                  "hosts must be strings");
    add_host(L, lua_tostring(L, -1), b, &n);
    lua_pop(L, 1);
  }
  luaL_argcheck(L, n > 0, 1, "field 'hosts' is empty");
  lua_rawgeti(L, 3, 1);                     /* keeps the host names alive */
  first = lua_tostring(L, -1);
  if (lua_getfield(L, 1, "handler") != LUA_TFUNCTION)
    return luaL_argerror(L, 1, "field 'handler' must be a function");
  s->handler = luaL_ref(L, LUA_REGISTRYINDEX);
  if (lua_getfield(L, 1, "tls") == LUA_TTABLE) {
    const char *cert, *key;
    lua_getfield(L, -1, "cert");
    lua_getfield(L, -2, "key");
    cert = lua_tostring(L, -2);
    key = lua_tostring(L, -1);
    luaL_argcheck(L, cert && key, 1, "tls needs cert and key strings");
    if (!(s->cert = load_pem(cert)) || !(s->key = load_pem(key))) {
      int err = errno, bad_key = s->cert != NULL;
      close_server(L, s);
      return ghl_fail(L, "tls", "cannot read TLS %s '%s': %s",
                      bad_key ? "key" : "cert", bad_key ? key : cert,
                      strerror(err));
    }
  } else
    luaL_argcheck(L, lua_isnil(L, -1), 1, "field 'tls' must be a table");
  if ((r = bind_all(L, s, b, n, (int)port)) != 0) {
    close_server(L, s);
    return r;
  }
  snprintf(s->url, sizeof s->url,
           strchr(first, ':') ? "%s://[%s]:%d" : "%s://%s:%d",
           s->cert ? "https" : "http", first, s->port);
  lua_settop(L, 2);
  return 1;
}

/* ---- Methods ---- */

static struct server *check_server(lua_State *L)
{
  struct server *s = luaL_checkudata(L, 1, SERVER_MT);
  if (s->ndaemon == 0)
    luaL_error(L, "attempt to use a closed server");
  if (s->running)
    luaL_error(L, "server is already running (called from its handler?)");
  return s;
}

/* Resume the delayed requests whose time has come (MHD then calls the
** access handler again, which queues the prepared answer). Returns the
** earliest deadline still pending, HUGE_VAL if none, or 0 if something was
** resumed: MHD only notices that in its next run, so don't wait. */
static double resume_due(struct server *s)
{
  double t = now(), next = HUGE_VAL;
  struct request *r = s->delayed, *nx;
  for (; r; r = nx) {
    nx = r->next;
    if (r->deadline <= t) {
      unlink_request(r);
      MHD_resume_connection(r->conn);
      next = 0;
    } else if (r->deadline < next)
      next = r->deadline;
  }
  return next;
}

/* The loop behind run and step: poll the daemons' epoll fds and run MHD
** until stop (then drain a moment, so answers already queued go out), the
** time limit (seconds < 0: none), SIGINT, or with `once` after one round.
** Lua callbacks use L meanwhile. Pushes true, or nil, ghl.error on SIGINT;
** performs a close requested from the handler. */
static int serve(lua_State *L, struct server *s, double seconds, int once)
{
  double end = seconds < 0 ? HUGE_VAL : now() + seconds, drain = HUGE_VAL;
  int i, interrupted = 0;
  s->L = L;
  s->running = 1;
  for (;;) {
    struct pollfd pfd[MAX_DAEMONS];
    double wake = resume_due(s);
    int wait = ms_until(wake < end ? wake : end);
    for (i = 0; i < s->ndaemon; i++) {
      MHD_UNSIGNED_LONG_LONG ms;
      const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(s->daemon[i], MHD_DAEMON_INFO_EPOLL_FD);
      pfd[i].fd = di ? di->epoll_fd : -1;
      pfd[i].events = POLLIN;
      if (MHD_get_timeout(s->daemon[i], &ms) == MHD_YES
          && ms < (MHD_UNSIGNED_LONG_LONG)wait)
        wait = (int)ms;
    }
    poll(pfd, (nfds_t)s->ndaemon, wait);      /* EINTR: checked below */
    for (i = 0; i < s->ndaemon; i++)
      MHD_run(s->daemon[i]);
    if ((interrupted = ghl_interrupted) != 0) {
      ghl_interrupted = 0;
      break;
    }
    if (once || now() >= end)
      break;
    if (s->stopped && drain == HUGE_VAL)
      drain = now() + DRAIN_SECONDS;
    if (s->stopped && (s->sending == 0 || now() >= drain))
      break;
  }
  s->L = NULL;
  s->running = 0;
  if (s->close_pending)
    close_server(L, s);
  if (interrupted)
    return ghl_fail(L, "interrupted", "server interrupted");
  lua_pushboolean(L, 1);
  return 1;
}

/* srv:run([seconds]) -> true | nil, ghl.error */
static int server_run(lua_State *L)
{
  struct server *s = check_server(L);
  double seconds = luaL_optnumber(L, 2, -1);
  s->stopped = 0;
  return serve(L, s, seconds, 0);
}

/* srv:step([seconds]) -> true | nil, ghl.error: one round, waiting at
** most seconds (default 0) for something to do. */
static int server_step(lua_State *L)
{
  struct server *s = check_server(L);
  double seconds = luaL_optnumber(L, 2, 0);
  luaL_argcheck(L, seconds >= 0, 2, "must not be negative");
  return serve(L, s, seconds, 1);
}

/* srv:stop(): make run return once the current request is answered. */
static int server_stop(lua_State *L)
{
  struct server *s = luaL_checkudata(L, 1, SERVER_MT);
  s->stopped = 1;
  return 0;
}

/* srv:close(), __gc, __close: stop listening and free everything.
** Idempotent; from inside the handler, deferred until run/step returns. */
static int server_close(lua_State *L)
{
  struct server *s = luaL_checkudata(L, 1, SERVER_MT);
  if (s->running)
    s->stopped = s->close_pending = 1;
  else
    close_server(L, s);
  return 0;
}

/* __index: the fields port and url, else the methods (upvalue 1). */
static int server_index(lua_State *L)
{
  struct server *s = luaL_checkudata(L, 1, SERVER_MT);
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
  if (strcmp(k, "port") == 0)
    lua_pushinteger(L, s->port);
  else if (strcmp(k, "url") == 0)
    lua_pushstring(L, s->url);
  else {
    lua_settop(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
  }
  return 1;
}

static int server_tostring(lua_State *L)
{
  struct server *s = luaL_checkudata(L, 1, SERVER_MT);
  if (s->ndaemon == 0)
    lua_pushliteral(L, "ghl.server (closed)");
  else
    lua_pushfstring(L, "ghl.server (%s)", s->url);
  return 1;
}

static const luaL_Reg server_methods[] = {
  { "run",   server_run },
  { "step",  server_step },
  { "stop",  server_stop },
  { "close", server_close },
  { NULL, NULL }
};

static const luaL_Reg server_meta[] = {
  { "__gc",       server_close },
  { "__close",    server_close },
  { "__tostring", server_tostring },
  { NULL, NULL }
};

static const luaL_Reg server_funcs[] = {
  { "listen", server_listen },
  { NULL, NULL }
};

int luaopen_ghl_server(lua_State *L)
{
  ghl_lib_need(L, &ghl_mhd_lib);                      /* libmicrohttpd, opened here (lib_mhd.h) */
  if (luaL_newmetatable(L, SERVER_MT)) {              /* mt */
    luaL_setfuncs(L, server_meta, 0);
    luaL_newlib(L, server_methods);                   /* mt methods */
    lua_pushcclosure(L, server_index, 1);             /* mt __index */
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, server_funcs);
  return 1;
}
