/*
** ghl.jq: jq filters and faithful JSON printing through libjq (jq 1.6).
** lua-cjson cannot tell [] from {} and rounds numbers to 14 digits; jq's
** own parser and printer keep the text's arrays, objects, key order and
** numbers (as doubles), sort keys and colour output the way `jq` does.
**
**   jq.compile(filter [, limits])  -> program | nil, err
**   prog:run(text [, opts [, fn]]) -> array of outputs | true (with fn) | nil, err
**   prog:close()                   (also __gc and __close)
**   jq.format(text [, opts])       -> text | nil, err (kind "decode")
** (Lua values become JSON text through ghl.json.encode, src/json.c; print
** that text through jq.format for jq's indentation, order and colours.)
**
** opts: indent (0 compact, the default; 1..7 spaces), sort (keys sorted),
** color (jq's colours; JQ_COLORS is honoured), raw (string outputs of run
** as their text, like jq -r). compile's limits and run's
** opts also take the limits of a filter: timeout (seconds), memory and
** output (bytes); 0 means none. Their defaults come from the environment:
** GHLUA_JQ_TIMEOUT (seconds, 30), GHLUA_JQ_MEMORY (MiB, 512) and
** GHLUA_JQ_OUTPUT (MiB, 1024).
**
** Expected failures return nil, ghl.error: a filter that does not compile
** (kind "usage", jq's messages), input that is not JSON (kind "decode", with
** jq's "at line L, column C"), a runtime error of the filter (kind "jq"),
** and a filter that was ended (kind "jq", one line, with err.reason
** "memory", "time", "output", "abort" or "crash"; err.detail holds libjq's
** assertion when there is one). Ctrl-C gives kind "interrupted".
**
** ---- Why filters run in a worker process ----
** libjq 1.6 aborts the whole process on some filters (an assertion in the
** date builtins: `1e30 | todate`), reads uninitialised state (jq_init
** leaves the input callback and the out-of-memory handler unset: `input`
** jumps through a garbage pointer), and lets some filters grow without end
** (`"a" | gsub("";"x")` recurses for ever). An abort cannot be caught by
** Lua or C, and guards only stop the filters someone listed; a newer libjq
** is not a Debian 12 package. So each program gets a worker: a fork
** (without exec) that compiles the filter and then runs it on each input
** sent over a socket, streaming the outputs back in frames. jq 1.6 spends
** about 16 ms compiling a filter (its builtins are compiled each time), so
** a worker is kept for all the runs of its program, and a run costs a round
** trip instead of a compile. A worker that dies (an abort, a crash, a limit)
** becomes one ghl.error, and the program gets a new worker at its next run.
**
** Limits. The parent keeps a wall-clock deadline per run (the time the
** caller's fn takes does not count), counts the output, and kills the worker
** past either. The worker runs under RLIMIT_CPU (a second past the timeout:
** the backstop while the parent waits in fn) and a memory limit counted
** from the size it was forked at: RLIMIT_AS in a plain build. Under
** AddressSanitizer RLIMIT_AS does not work: the runtime reserves about
** 20 TB of address space at start, small allocations grow inside that
** reservation where RLIMIT_AS sees no growth (a test got 390 MB past a
** 64 MB limit), and large ones fail inside the runtime's own mappings,
** which then dies. So there the worker counts the heap's live bytes
** through the sanitizer's allocator hooks instead. Either way libjq's
** out-of-memory handler, or the hook, reports "memory" and exits.
**
** After fork. The parent is single-threaded Lua, but libcurl's threaded
** resolver may have a thread. The worker only uses malloc (glibc makes it
** safe across fork), libjq, and read/write on its own descriptors: it closes
** every other descriptor (sockets, SQLite files), never calls into Lua,
** never flushes the parent's stdio buffers (it leaves by _exit, and glibc's
** abort does not flush), ignores SIGINT (the parent decides on Ctrl-C),
** takes SIGABRT the default way (no inherited handler reports libjq's
** assertions as crashes), dumps no core, and dies with the parent
** (PR_SET_PDEATHSIG). Its stderr
** (libjq's assertion text, jq's `stderr` builtin) goes to the parent, which
** passes it on after a run and reads it to name an abort. At most
** MAX_WORKERS workers live at once: past that, the least recently used idle
** one is stopped, and its program compiles again when it next runs.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib_jq.h"   /* before jq.h and jv.h: libjq is opened on first use */
#include <jq.h>
#include <jv.h>
#include <lauxlib.h>

#include "buf.h"
#include "error.h"
#include "host.h"

#if defined(__SANITIZE_ADDRESS__)
#define GHL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GHL_ASAN 1
#endif
#endif

#ifdef GHL_ASAN
/* From <sanitizer/allocator_interface.h> (not shipped with gcc 12). */
int __sanitizer_install_malloc_and_free_hooks(void (*)(const volatile void *, size_t),
                                              void (*)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *);
#endif

#define PROGRAM_MT "ghl.jq.program"
#define GUARD_MT "ghl.jq.guard"
#define BOX_MT "ghl.jq.box"
#define MAX_DEPTH 1000

#define DEFAULT_TIMEOUT 30.0     /* seconds */
#define DEFAULT_MEMORY 512.0     /* MiB */
#define DEFAULT_OUTPUT 1024.0    /* MiB */
#define MIB 1048576.0
#define MAX_WORKERS 16           /* live workers at once */
#define FLUSH_BYTES 32768        /* the worker sends its frames by this much ... */
#define FLUSH_USEC 50000         /* ... or after this much CPU time (SIGPROF) */
#define ERR_KEEP 16384           /* the worker's stderr kept for naming an abort */
#define EXIT_MEMORY 86           /* the worker's exit status: out of memory */
#define EXIT_LOST 87             /* ... the parent went away, or the protocol broke */

/* ---- Frames ----
** Both ways a frame is a type byte and a 64-bit length (native order: both
** ends are the same binary), then the payload. The parent sends F_RUN (a
** struct request, then the input text); the worker answers F_COMPILED or
** F_USAGE once, and per run any F_OUTPUT and F_DEBUG frames ended by one
** of F_DONE, F_ERROR, F_HALT, F_DECODE, or F_MEMORY (then it exits). */
enum {
  F_RUN = 'R', F_COMPILED = 'C', F_USAGE = 'U', F_OUTPUT = 'O', F_DEBUG = 'D',
  F_DONE = 'Z', F_ERROR = 'J', F_HALT = 'H', F_DECODE = 'P', F_MEMORY = 'M'
};
#define HEADER 9

struct request {
  double cpu;              /* seconds; 0: none */
  double memory;           /* bytes; 0: none */
  int32_t flags;           /* jv_dump flags */
  int32_t raw;             /* strings as their text */
};

static void put_header(unsigned char *h, int type, uint64_t n) {
  h[0] = (unsigned char)type;
  memcpy(h + 1, &n, sizeof n);
}

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A filter's limits: seconds, bytes, bytes; 0 means none. */
struct limits {
  double timeout, memory, output;
};

/* ---- Callbacks shared by both sides (never raise, never print) ---- */

/* jq's error callback: append the message (consumed) to the buffer at
** data, one per line. A non-string is dumped as jq does. */
static void on_error(void *data, jv msg) {
  ghl_buf *b = data;
  if (jv_get_kind(msg) == JV_KIND_INVALID) msg = jv_invalid_get_msg(msg);
  if (jv_get_kind(msg) != JV_KIND_STRING) msg = jv_dump_string(msg, JV_PRINT_INVALID);
  if (jv_get_kind(msg) == JV_KIND_STRING) {
    const char *s = jv_string_value(msg);
    size_t i, n = strlen(s), blanks = 0;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
    if (b->len > 0) ghl_buf_add(b, "\n", 1);
    for (i = 0; i < n; i++) {                        /* no spaces before a newline */
      if (s[i] == ' ') { blanks++; continue; }
      if (s[i] != '\n') while (blanks-- > 0) ghl_buf_add(b, " ", 1);
      blanks = 0;
      ghl_buf_add(b, &s[i], 1);
    }
  }
  jv_free(msg);
}

/* msg (consumed) as a string jv: itself, or dumped. */
static jv as_text(jv msg) {
  return jv_get_kind(msg) == JV_KIND_STRING ? msg : jv_dump_string(msg, 0);
}

/* {==================================================================== */
/* ---- The worker (runs only in the forked child) ---- */

/* The one worker of this process. Static so that libjq's out-of-memory
** handler and the sanitizer's hooks find it. */
static struct {
  int fd;                  /* the socket to the parent */
  ghl_buf out;             /* frames not sent yet */
  volatile sig_atomic_t busy;    /* out is being changed or sent: on_prof keeps off */
  jv_parser *parser;       /* the input of the current run */
  int ended;               /* the input ran out under `input` */
  jv bad;                  /* jq's message for input that is not JSON, or invalid */
  double memory;           /* the memory limit in force (bytes; 0: none) */
#ifdef GHL_ASAN
  long long live, cap;     /* live heap bytes since the fork, and the limit (0: none) */
#endif
} W;

/* W.busy on and off, with fences so that no change to W.out is moved
** outside by the compiler. */
#define BUSY(on) do { atomic_signal_fence(memory_order_seq_cst); W.busy = (on); \
                      atomic_signal_fence(memory_order_seq_cst); } while (0)

/* Send n bytes or die: the parent is gone. */
static void w_send(const void *p, size_t n) {
  const char *s = p;
  while (n > 0) {
    ssize_t k = send(W.fd, s, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      _exit(EXIT_LOST);
    }
    s += k;
    n -= (size_t)k;
  }
}

/* Read n bytes; 0 at the end of the stream. */
static int w_recv(void *p, size_t n) {
  char *s = p;
  while (n > 0) {
    ssize_t k = recv(W.fd, s, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    s += k;
    n -= (size_t)k;
  }
  return 1;
}

static void w_flush(void) {
  BUSY(1);
  if (W.out.len) w_send(W.out.data, W.out.len);
  W.out.len = 0;
  BUSY(0);
}

/* SIGPROF, every FLUSH_USEC of CPU time during a run: send the frames
** queued so far, so that outputs followed by a long computation are not
** held back (and are not lost if the worker is then ended). Only send(2),
** and never while out is being changed. */
static void on_prof(int sig) {
  int saved = errno;
  (void)sig;
  if (!W.busy && W.out.len) w_flush();
  errno = saved;
}

/* Start (on) or stop the SIGPROF ticks of a run. */
static void w_ticks(int on) {
  struct itimerval it;
  memset(&it, 0, sizeof it);
  if (on) it.it_interval.tv_usec = it.it_value.tv_usec = FLUSH_USEC;
  setitimer(ITIMER_PROF, &it, NULL);
}

/* Out of memory (libjq's handler, the sanitizer hook or our own buffer):
** send what is queued (unless a frame is being added: the hook may run
** inside w_frame) and F_MEMORY, and exit. */
static void w_nomem(void *data) {
  unsigned char h[HEADER];
  (void)data;
  w_ticks(0);
  if (!W.busy && W.out.len) {
    BUSY(1);
    w_send(W.out.data, W.out.len);
  }
  BUSY(1);
  put_header(h, F_MEMORY, 0);
  w_send(h, sizeof h);
  _exit(EXIT_MEMORY);
}

/* Queue a frame. Outputs and debug messages are batched (FLUSH_BYTES,
** or on_prof's tick); a big payload goes straight out; anything else ends
** a step and is sent at once. */
static void w_frame(int type, const char *p, size_t n) {
  unsigned char h[HEADER];
  put_header(h, type, n);
  BUSY(1);
  if (n >= FLUSH_BYTES) {
    if (W.out.len) w_send(W.out.data, W.out.len);
    W.out.len = 0;
    w_send(h, sizeof h);
    w_send(p, n);
  } else {
    size_t len = W.out.len;
    if (ghl_buf_add(&W.out, h, sizeof h) != 0 || ghl_buf_add(&W.out, p, n) != 0) {
      W.out.len = len;                               /* whole frames only */
      BUSY(0);
      w_nomem(NULL);
    }
  }
  BUSY(0);
  if (W.out.len >= FLUSH_BYTES || (type != F_OUTPUT && type != F_DEBUG)) w_flush();
}

/* Queue a frame with the text of string jv s (consumed). */
static void w_frame_jv(int type, jv s) {
  w_frame(type, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)));
  jv_free(s);
}

#ifdef GHL_ASAN
static void on_malloc(const volatile void *ptr, size_t size) {
  (void)ptr;
  W.live += (long long)size;
  if (W.cap > 0 && W.live > W.cap) {
    W.cap = 0;                                       /* once: w_nomem may allocate nothing, but be sure */
    w_nomem(NULL);
  }
}

static void on_free(const volatile void *ptr) {
  W.live -= (long long)__sanitizer_get_allocated_size(ptr);
}
#else
/* The worker's virtual size in bytes (0 when unknown: without /proc a
** plain build has no memory limit, only the others). */
static double vm_size(void) {
  char b[64];
  ssize_t k;
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  k = read(fd, b, sizeof b - 1);
  close(fd);
  if (k <= 0) return 0;
  b[k] = '\0';
  return (double)strtoul(b, NULL, 10) * (double)sysconf(_SC_PAGESIZE);
}
#endif

/* Put the limits of the next step in force: CPU seconds from now (plus
** one: RLIMIT_CPU counts whole seconds and the parent's deadline is the
** precise one), and memory above the size the worker was forked at. */
static void w_limits(double cpu, double memory) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_CPU, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    if (cpu > 0) {
      struct rusage ru;
      double want = cpu + 1;
      if (getrusage(RUSAGE_SELF, &ru) == 0)
        want += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
      if (rl.rlim_max == RLIM_INFINITY || want < (double)rl.rlim_max) rl.rlim_cur = (rlim_t)want;
    }
    setrlimit(RLIMIT_CPU, &rl);
  }
  if (memory == W.memory) return;
  W.memory = memory;
#ifdef GHL_ASAN
  W.cap = memory > 0 ? (long long)memory : 0;
#else
  {
    static double base = 0;
    if (base == 0) base = vm_size();
    if (base > 0 && getrlimit(RLIMIT_AS, &rl) == 0) {
      double want = base + memory;
      rl.rlim_cur = rl.rlim_max;
      if (memory > 0 && (rl.rlim_max == RLIM_INFINITY || want < (double)rl.rlim_max))
        rl.rlim_cur = (rlim_t)want;
      setrlimit(RLIMIT_AS, &rl);
    }
  }
#endif
}

/* The next JSON value of the run's input; invalid without a message at
** the end, with one (kept in W.bad) for text that is not JSON. The run's
** loop and jq's `input` share it, so `input` reads the next input of the
** same run, as jq does. */
static jv next_input(void) {
  jv v;
  if (jv_get_kind(W.bad) == JV_KIND_STRING) return jv_invalid_with_msg(jv_copy(W.bad));
  v = jv_parser_next(W.parser);
  if (jv_is_valid(v)) return v;
  if (jv_invalid_has_msg(jv_copy(v))) {
    W.bad = as_text(jv_invalid_get_msg(v));
    return jv_invalid_with_msg(jv_copy(W.bad));
  }
  jv_free(v);
  W.ended = 1;
  return jv_invalid();
}

/* jq's input callback (`input`, `inputs`). At the end, an invalid value
** without a message: libjq 1.6 turns it into the error "break", which its
** `inputs` catches (w_run names it "No more inputs" for `input`). */
static jv on_input(jq_state *jq, void *data) {
  (void)jq;
  (void)data;
  return next_input();
}

/* jq's debug callback (the `debug` builtin): ["DEBUG:",value] as a frame;
** the parent prints it on stderr, like jq. Consumes msg. */
static void on_debug(void *data, jv msg) {
  (void)data;
  msg = jv_dump_string(jv_array_append(jv_array_append(jv_array(), jv_string("DEBUG:")), msg), 0);
  if (jv_get_kind(msg) == JV_KIND_STRING) w_frame_jv(F_DEBUG, msg);
  else jv_free(msg);
}

/* One run: each JSON value of the n bytes at text through the filter,
** each output as a frame, then exactly one closing frame. */
static void w_run(jq_state *jq, const struct request *rq, const char *text, size_t n) {
  w_ticks(1);
  W.parser = jv_parser_new(0);
  jv_parser_set_buf(W.parser, text, (int)n, 0);    /* 0: the whole text */
  W.ended = 0;
  W.bad = jv_invalid();
  for (;;) {
    jv in = next_input();
    if (!jv_is_valid(in)) {
      jv_free(in);
      if (jv_get_kind(W.bad) == JV_KIND_STRING) w_frame_jv(F_DECODE, jv_copy(W.bad));
      else w_frame(F_DONE, "", 0);
      break;
    }
    jq_start(jq, in, 0);                            /* takes in */
    for (;;) {
      jv out = jq_next(jq);
      if (jv_is_valid(out)) {
        if (!(rq->raw && jv_get_kind(out) == JV_KIND_STRING)) out = jv_dump_string(out, rq->flags);
        w_frame_jv(F_OUTPUT, out);
        continue;
      }
      if (jv_invalid_has_msg(jv_copy(out))) {
        jv msg = jv_invalid_get_msg(out);
        if (jv_get_kind(W.bad) == JV_KIND_STRING) {   /* `input` met text that is not JSON */
          jv_free(msg);
          w_frame_jv(F_DECODE, jv_copy(W.bad));
        } else {
          if (W.ended && jv_get_kind(msg) == JV_KIND_STRING && strcmp(jv_string_value(msg), "break") == 0) {
            jv_free(msg);
            msg = jv_string("No more inputs");
          }
          w_frame_jv(F_ERROR, as_text(msg));
        }
        goto end;
      }
      jv_free(out);
      if (jq_halted(jq)) {
        jv msg = jq_get_error_message(jq);
        if (jv_get_kind(msg) == JV_KIND_STRING || (jv_is_valid(msg) && jv_get_kind(msg) != JV_KIND_NULL)) {
          w_frame_jv(F_HALT, as_text(msg));
        } else {
          jv_free(msg);
          w_frame(F_DONE, "", 0);
        }
        goto end;
      }
      break;                                         /* next input */
    }
  }
end:
  w_ticks(0);
  jv_parser_free(W.parser);
  W.parser = NULL;
  jv_free(W.bad);
  W.bad = jv_invalid();
}

/* Close every descriptor from fd up. */
static void close_from(int fd) {
  if (close_range((unsigned)fd, ~0U, 0) != 0) {
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (; fd < max; fd++) close(fd);
  }
}

/* The child's life: set up the process, compile the filter, answer runs
** until the parent closes the socket. Never returns. */
static void worker_main(int sock, int errfd, pid_t parent, const char *filter,
                        const struct limits *lim) __attribute__((noreturn));
static void worker_main(int sock, int errfd, pid_t parent, const char *filter,
                        const struct limits *lim) {
  /* SIGABRT too: libjq's failed assertions are the expected, contained
  ** case, so no handler (a sanitizer's with handle_abort, a fuzzer's)
  ** should report them as crashes; SIGSEGV and the like keep theirs. */
  static const int dfl[] = {SIGABRT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGCHLD, SIGXCPU,
                            SIGUSR1, SIGUSR2};
  struct rlimit nocore = {0, 0};
  struct sigaction sa;
  sigset_t none;
  jq_state *jq;
  ghl_buf msgs = {NULL, 0, 0};
  size_t i;
  int fd;
  signal(SIGINT, SIG_IGN);
  for (i = 0; i < sizeof dfl / sizeof dfl[0]; i++) signal(dfl[i], SIG_DFL);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_prof;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGPROF, &sa, NULL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(EXIT_LOST);        /* the parent died before prctl */
  setrlimit(RLIMIT_CORE, &nocore);
  sock = fcntl(sock, F_DUPFD, 10);                 /* out of the way of 0..3 */
  errfd = fcntl(errfd, F_DUPFD, 10);
  if (sock < 0 || errfd < 0 || dup2(errfd, 2) < 0 || dup2(sock, 3) < 0) _exit(EXIT_LOST);
  fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, 0);
    dup2(fd, 1);
  }
  close_from(4);
  W.fd = 3;
  W.out.data = NULL;
  W.out.len = W.out.cap = 0;
  W.bad = jv_invalid();
  W.busy = 0;
#ifdef GHL_ASAN
  W.live = W.cap = 0;
  __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
#endif
#ifndef GHL_ASAN
  /* the parent's free heap, inherited, is given back first, so that the
     memory limit (counted from the size now) counts what libjq takes */
  malloc_trim(0);
#endif
  W.memory = -1;
  w_limits(lim->timeout, lim->memory);
  jq = jq_init();
  if (jq == NULL) w_nomem(NULL);
  jq_set_nomem_handler(jq, w_nomem, NULL);         /* jq_init leaves these unset */
  jq_set_error_cb(jq, on_error, &msgs);
  jq_set_debug_cb(jq, on_debug, NULL);
  jq_set_input_cb(jq, on_input, NULL);
  if (!jq_compile(jq, filter)) {
    w_frame(F_USAGE, msgs.data ? msgs.data : "", msgs.len);
    _exit(0);
  }
  ghl_buf_free(&msgs);
  w_frame(F_COMPILED, "", 0);
  for (;;) {
    unsigned char h[HEADER];
    struct request rq;
    uint64_t n;
    char *text;
    if (!w_recv(h, sizeof h)) {                      /* closed: the program is done */
      jq_teardown(&jq);
      _exit(0);
    }
    memcpy(&n, h + 1, sizeof n);
    if (h[0] != F_RUN || n < sizeof rq || !w_recv(&rq, sizeof rq)) _exit(EXIT_LOST);
    n -= sizeof rq;
    w_limits(rq.cpu, rq.memory);
    text = malloc(n ? (size_t)n : 1);
    if (text == NULL) w_nomem(NULL);
    if (!w_recv(text, (size_t)n)) _exit(EXIT_LOST);
    w_run(jq, &rq, text, (size_t)n);
    free(text);
  }
}
/* }==================================================================== */

/* ---- Options and helpers ---- */

/* Boolean option k of the options table at idx. */
static int opt_bool(lua_State *L, int idx, const char *k) {
  int r;
  if (!lua_istable(L, idx)) return 0;
  lua_getfield(L, idx, k);
  r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

/* jv_dump flags from the options table at idx (absent = compact). */
static int dump_flags(lua_State *L, int idx) {
  int flags = 0;
  lua_Integer indent = 0;
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  if (lua_getfield(L, idx, "indent") != LUA_TNIL) indent = luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  luaL_argcheck(L, indent >= 0 && indent <= 7, idx, "indent must be 0..7");
  if (indent > 0) flags |= JV_PRINT_INDENT_FLAGS((int)indent);
  if (opt_bool(L, idx, "sort")) flags |= JV_PRINT_SORTED;
  if (opt_bool(L, idx, "color")) flags |= JV_PRINT_COLOR;
  return flags;
}

/* One limit from the environment variable name (a number of units; 0:
** none), else def. Returns 1, or 0 after pushing nil, err(kind "usage"). */
static int env_limit(lua_State *L, const char *name, const char *unit, double scale, double def,
                     double *out) {
  const char *s = getenv(name);
  char *end;
  double v;
  *out = def * scale;
  if (s == NULL || *s == '\0') return 1;
  v = strtod(s, &end);
  while (*end == ' ') end++;
  if (end == s || *end != '\0' || !(v >= 0) || v > 1e9) {
    lua_pushnil(L);
    ghl_pusherror(L, "usage", "%s must be a number of %s (0: no limit), got '%s'", name, unit, s);
    return 0;
  }
  *out = v * scale;
  return 1;
}

/* The limits: opts fields at idx (timeout in seconds, memory and output
** in bytes) over the environment's, over the defaults. Returns 1, or 0
** after pushing nil, err for a bad environment variable. Bad opts raise. */
static int get_limits(lua_State *L, int idx, struct limits *lim) {
  static const char *const names[] = {"timeout", "memory", "output"};
  double *fields[3];
  int i;
  if (!env_limit(L, "GHLUA_JQ_TIMEOUT", "seconds", 1, DEFAULT_TIMEOUT, &lim->timeout) ||
      !env_limit(L, "GHLUA_JQ_MEMORY", "MiB", MIB, DEFAULT_MEMORY, &lim->memory) ||
      !env_limit(L, "GHLUA_JQ_OUTPUT", "MiB", MIB, DEFAULT_OUTPUT, &lim->output))
    return 0;
  if (!lua_istable(L, idx)) return 1;
  fields[0] = &lim->timeout;
  fields[1] = &lim->memory;
  fields[2] = &lim->output;
  for (i = 0; i < 3; i++) {
    if (lua_getfield(L, idx, names[i]) != LUA_TNIL) {
      lua_Number v = luaL_checknumber(L, -1);
      luaL_argcheck(L, v >= 0 && v <= 1e18, idx, "limits must be numbers >= 0 (0: none)");
      *fields[i] = (double)v;
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* Push nil and a ghl.error of kind whose message is prefix plus the n
** bytes at s, less trailing newlines and blanks (halt_error's). Returns 2. */
static int fail_text(lua_State *L, const char *kind, const char *prefix, const char *s, size_t n) {
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
  lua_pushnil(L);
  ghl_pusherror(L, kind, "%s", prefix);
  lua_pushstring(L, prefix);
  lua_pushlstring(L, s, n);
  lua_concat(L, 2);
  lua_setfield(L, -2, "message");
  return 2;
}

/* Push nil and a ghl.error of kind whose message is the text of jv msg
** (consumed: a string, or anything else, dumped). Returns 2. */
static int fail_jv(lua_State *L, const char *kind, const char *prefix, jv msg) {
  msg = as_text(msg);
  fail_text(L, kind, prefix, jv_string_value(msg), strlen(jv_string_value(msg)));
  jv_free(msg);
  return 2;
}

/* Push the text of jv s (borrowed; not freed). */
static void push_jv_string(lua_State *L, jv s) {
  lua_pushlstring(L, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)));
}

/* A parser over the n bytes at text (which must outlive it). */
static jv_parser *new_parser(lua_State *L, const char *text, size_t n) {
  jv_parser *ps;
  if (n > INT_MAX) luaL_error(L, "JSON text too large (%d bytes at most)", INT_MAX);
  ps = jv_parser_new(0);
  if (ps == NULL) luaL_error(L, "out of memory");
  jv_parser_set_buf(ps, text, (int)n, 0);      /* 0: the whole text */
  return ps;
}

/* ---- The box ---- */

/* A jv that must survive a raise: freed by __gc (liolib's UBox). */
struct box {
  jv value;
  jv_parser *parser;
};

/* Free what the box holds; idempotent. */
static void box_release(struct box *b) {
  jv_free(b->value);
  b->value = jv_invalid();
  if (b->parser) jv_parser_free(b->parser);
  b->parser = NULL;
}

static int box_gc(lua_State *L) {
  box_release(luaL_checkudata(L, 1, BOX_MT));
  return 0;
}

/* Push a new empty box. Stack: +1. */
static struct box *new_box(lua_State *L) {
  struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->value = jv_invalid();
  b->parser = NULL;
  luaL_setmetatable(L, BOX_MT);
  return b;
}

/* {==================================================================== */
/* ---- Workers, from the parent's side ---- */

/* A compiled filter: its text, and the worker that compiled it (if any:
** none after a failure, or when stopped to make room; the next run starts
** one). Everything it owns is released by program_release. */
struct program {
  char *filter;            /* owned, NUL-terminated; NULL when closed */
  pid_t pid;               /* the worker, or 0 */
  int sock;                /* frames both ways, or -1 */
  int errfd;               /* the worker's stderr, or -1 */
  int busy;                /* in a run (its fn may be running) */
  ghl_buf in;              /* bytes read from the worker ... */
  size_t inpos;            /* ... from here on not used yet */
  ghl_buf errtext;         /* the worker's stderr, not passed on yet */
  struct program *prev, *next;   /* live workers, most recently used first */
};

/* Marks a run in progress: a to-be-closed slot, so that a raise in fn
** stops the worker half-way through a run. */
struct guard {
  struct program *p;
};

static struct program *workers;   /* programs with a live worker */
static int nworkers;

enum { IO_READY, IO_END, IO_TIMEOUT, IO_INTERRUPT, IO_NOMEM };
enum { END_NONE, END_TIME, END_OUTPUT, END_MEMORY, END_INTERRUPT };

static void unlink_worker(struct program *p) {
  if (p->prev) p->prev->next = p->next;
  else if (workers == p) workers = p->next;
  else return;                                       /* not linked */
  if (p->next) p->next->prev = p->prev;
  p->prev = p->next = NULL;
  nworkers--;
}

static void link_worker(struct program *p) {
  p->prev = NULL;
  p->next = workers;
  if (workers) workers->prev = p;
  workers = p;
  nworkers++;
}

static void read_err(struct program *p);

/* Pass the worker's stderr on to ours (what it wrote so far). */
static void pass_err(struct program *p) {
  read_err(p);
  if (p->errtext.len) {
    fwrite(p->errtext.data, 1, p->errtext.len, stderr);
    fflush(stderr);
  }
  p->errtext.len = 0;
}

/* Read what the worker wrote on its stderr (no wait). Past ERR_KEEP bytes
** the older part is passed on. Closes errfd at its end. */
static void read_err(struct program *p) {
  char chunk[4096];
  while (p->errfd >= 0) {
    ssize_t k = read(p->errfd, chunk, sizeof chunk);
    if (k > 0) {
      if (p->errtext.len + (size_t)k > ERR_KEEP) {   /* pass on the older part */
        fwrite(p->errtext.data, 1, p->errtext.len, stderr);
        fflush(stderr);
        p->errtext.len = 0;
      }
      ghl_buf_add(&p->errtext, chunk, (size_t)k);
    } else if (k < 0 && errno == EINTR) {
      continue;
    } else {
      if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        close(p->errfd);
        p->errfd = -1;
      }
      return;
    }
  }
}

/* Stop the worker (SIGKILL unless it has ended: harmless if it has) and
** reap it; read the rest of its stderr; close the descriptors. Returns its
** wait status, or -1 if unknown. The program is left without a worker. */
static int reap(struct program *p) {
  int status = -1;
  if (p->pid > 0) {
    kill(p->pid, SIGKILL);
    while (waitpid(p->pid, &status, 0) < 0) {
      if (errno != EINTR) { status = -1; break; }
    }
  }
  if (p->errfd >= 0) {
    fcntl(p->errfd, F_SETFL, 0);                     /* the writer is gone: read to the end */
    read_err(p);
  }
  if (p->sock >= 0) close(p->sock);
  unlink_worker(p);
  p->pid = 0;
  p->sock = p->errfd = -1;
  p->in.len = p->inpos = 0;
  return status;
}

/* Past MAX_WORKERS live workers, stop the least recently used idle one. */
static void make_room(void) {
  struct program *q, *idle = NULL;
  if (nworkers < MAX_WORKERS) return;
  for (q = workers; q; q = q->next)
    if (!q->busy) idle = q;
  if (idle) {
    reap(idle);
    idle->errtext.len = 0;
  }
}

/* Wait until the socket is ready for events, reading the worker's stderr
** meanwhile. IO_READY, or IO_TIMEOUT past deadline (0: none), or
** IO_INTERRUPT on Ctrl-C (consumed, as http.c does), or IO_END. */
static int wait_io(struct program *p, double deadline, short events) {
  for (;;) {
    struct pollfd fds[2];
    int nfds = 1, ms = 250, r;
    if (ghl_interrupted) {
      ghl_interrupted = 0;
      return IO_INTERRUPT;
    }
    if (deadline > 0) {
      double left = deadline - mono();
      if (left <= 0) return IO_TIMEOUT;
      if (left * 1000 < ms) ms = (int)(left * 1000) + 1;
    }
    fds[0].fd = p->sock;
    fds[0].events = events;
    fds[0].revents = 0;
    if (p->errfd >= 0) {
      fds[1].fd = p->errfd;
      fds[1].events = POLLIN;
      fds[1].revents = 0;
      nfds = 2;
    }
    r = poll(fds, (nfds_t)nfds, ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return IO_END;
    }
    if (nfds == 2 && fds[1].revents) read_err(p);
    if (fds[0].revents) return IO_READY;
  }
}

/* Send n bytes to the worker within the deadline. */
static int send_all(struct program *p, const void *data, size_t n, double deadline) {
  const char *s = data;
  while (n > 0) {
    ssize_t k = send(p->sock, s, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (k > 0) {
      s += k;
      n -= (size_t)k;
    } else if (k < 0 && errno == EINTR) {
      continue;
    } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int r = wait_io(p, deadline, POLLOUT);
      if (r != IO_READY) return r;
    } else {
      return IO_END;
    }
  }
  return IO_READY;
}

/* The next frame from the worker: its type, and its payload, which stays
** valid until the next call. */
static int next_frame(struct program *p, double deadline, int *type, const char **data, size_t *len) {
  char chunk[65536];
  for (;;) {
    size_t avail = p->in.len - p->inpos;
    ssize_t k;
    int r;
    if (avail >= HEADER) {
      const unsigned char *h = (const unsigned char *)p->in.data + p->inpos;
      uint64_t n;
      memcpy(&n, h + 1, sizeof n);
      if (avail - HEADER >= n) {
        *type = h[0];
        *data = (const char *)h + HEADER;
        *len = (size_t)n;
        p->inpos += HEADER + (size_t)n;
        return IO_READY;
      }
    }
    if (p->inpos > 0) {                              /* keep only the unread part */
      memmove(p->in.data, p->in.data + p->inpos, avail);
      p->in.len = avail;
      p->inpos = 0;
    }
    k = recv(p->sock, chunk, sizeof chunk, MSG_DONTWAIT);
    if (k > 0) {
      if (ghl_buf_add(&p->in, chunk, (size_t)k) != 0) return IO_NOMEM;
      continue;
    }
    if (k == 0) return IO_END;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return IO_END;
    r = wait_io(p, deadline, POLLIN);
    if (r != IO_READY) return r;
  }
}

/* "512 MiB", "1.5 GiB", "100 bytes". */
static const char *size_text(char *b, size_t n, double bytes) {
  if (bytes >= 1024 * MIB) snprintf(b, n, "%.4g GiB", bytes / (1024 * MIB));
  else if (bytes >= MIB) snprintf(b, n, "%.4g MiB", bytes / MIB);
  else snprintf(b, n, "%.0f bytes", bytes);
  return b;
}

/* The last line of the worker's stderr that holds "Assertion" (libjq's
** failed check, as glibc prints it), pushed; or nothing. Returns 1 if
** pushed. */
static int push_assertion(lua_State *L, struct program *p) {
  const char *s = p->errtext.data, *a, *b, *e;
  if (s == NULL || (a = strstr(s, "Assertion")) == NULL) return 0;
  for (b = a; b > s && b[-1] != '\n'; b--) {}
  for (e = a; *e && *e != '\n'; e++) {}
  lua_pushlstring(L, b, (size_t)(e - b));
  return 1;
}

/* The worker is gone or must go: reap it and push nil, err (kind "jq",
** with reason) naming why: one of ours (why), else what its wait status
** and stderr tell. Returns 2. */
static int ended(lua_State *L, struct program *p, int why, const struct limits *lim) {
  int status = reap(p);
  char b1[64];
  const char *reason, *hint = NULL;
  if (why == END_INTERRUPT) {
    p->errtext.len = 0;
    return ghl_fail(L, "interrupted", "jq: interrupted");
  }
  if (why == END_NONE && status != -1) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_MEMORY) why = END_MEMORY;
    else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU) why = END_TIME;
  }
  lua_pushnil(L);
  if (why == END_MEMORY) {
    reason = "memory";
    if (lim->memory > 0) {
      ghl_pusherror(L, "jq", "jq: the filter was ended: it used more than %s",
                    size_text(b1, sizeof b1, lim->memory));
      hint = "raise the limit with GHLUA_JQ_MEMORY=MiB (0: no limit)";
    } else {
      ghl_pusherror(L, "jq", "jq: the filter was ended: it ran out of memory");
    }
  } else if (why == END_TIME) {
    reason = "time";
    snprintf(b1, sizeof b1, "%g", lim->timeout);
    ghl_pusherror(L, "jq", "jq: the filter was ended: it ran longer than %s s", b1);
    hint = "raise the limit with GHLUA_JQ_TIMEOUT=SECONDS (0: no limit)";
  } else if (why == END_OUTPUT) {
    reason = "output";
    ghl_pusherror(L, "jq", "jq: the filter was ended: its output passed %s",
                  size_text(b1, sizeof b1, lim->output));
    hint = "raise the limit with GHLUA_JQ_OUTPUT=MiB (0: no limit)";
  } else if (status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) {
    reason = "abort";
    if (p->filter && (strstr(p->filter, "date") || strstr(p->filter, "time"))) {
      ghl_pusherror(L, "jq", "jq: libjq aborted on this filter (an out-of-range date?)");
      hint = "libjq 1.6's date functions stop on numbers out of range; check the timestamps the filter converts";
    } else {
      ghl_pusherror(L, "jq", "jq: libjq aborted on this filter (a failed check inside libjq 1.6)");
      hint = "a libjq 1.6 bug; write the filter another way";
    }
    if (push_assertion(L, p)) lua_setfield(L, -2, "detail");
    p->errtext.len = 0;                              /* named: not passed on */
  } else {
    reason = "crash";
    if (status != -1 && WIFSIGNALED(status))
      ghl_pusherror(L, "jq", "jq: libjq crashed on this filter (SIG%s)",
                    sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
    else if (status != -1 && WIFEXITED(status))
      ghl_pusherror(L, "jq", "jq: the filter's process ended unexpectedly (exit status %d)",
                    WEXITSTATUS(status));
    else
      ghl_pusherror(L, "jq", "jq: the filter's process ended unexpectedly");
  }
  pass_err(p);                                       /* a sanitizer's report, jq's `stderr` */
  lua_pushstring(L, reason);
  lua_setfield(L, -2, "reason");
  if (hint) {
    lua_pushstring(L, hint);
    lua_setfield(L, -2, "hint");
  }
  return 2;
}

/* Start p's worker, which compiles p->filter under lim. Returns 0, or 2
** after pushing nil, err: kind "usage" with jq's messages for a filter
** that does not compile, or what ended the worker. */
static int spawn(lua_State *L, struct program *p, const struct limits *lim) {
  int sv[2], ep[2], r, type, e;
  const char *data;
  size_t len;
  pid_t parent = getpid(), pid;
  make_room();
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return ghl_fail(L, "jq", "jq: cannot start a process for the filter: %s", strerror(errno));
  if (pipe2(ep, O_CLOEXEC) != 0) {
    e = errno;
    close(sv[0]);
    close(sv[1]);
    return ghl_fail(L, "jq", "jq: cannot start a process for the filter: %s", strerror(e));
  }
  pid = fork();
  if (pid == 0) {
    close(sv[0]);
    close(ep[0]);
    worker_main(sv[1], ep[1], parent, p->filter, lim);
  }
  e = errno;
  close(sv[1]);
  close(ep[1]);
  if (pid < 0) {
    close(sv[0]);
    close(ep[0]);
    return ghl_fail(L, "jq", "jq: cannot start a process for the filter: %s", strerror(e));
  }
  fcntl(ep[0], F_SETFL, O_NONBLOCK);
  p->pid = pid;
  p->sock = sv[0];
  p->errfd = ep[0];
  p->in.len = p->inpos = 0;
  link_worker(p);
  r = next_frame(p, lim->timeout > 0 ? mono() + lim->timeout : 0, &type, &data, &len);
  if (r == IO_READY && type == F_COMPILED) return 0;
  if (r == IO_READY && type == F_USAGE) {
    lua_pushnil(L);
    ghl_pusherror(L, "usage", "jq: error: the filter does not compile");
    if (len > 0) {
      lua_pushlstring(L, data, len);
      lua_setfield(L, -2, "message");
    }
    reap(p);
    pass_err(p);
    return 2;
  }
  if (r == IO_NOMEM) {
    reap(p);
    return luaL_error(L, "out of memory");
  }
  return ended(L, p, r == IO_TIMEOUT ? END_TIME : r == IO_INTERRUPT ? END_INTERRUPT
                     : r == IO_READY && type == F_MEMORY ? END_MEMORY : END_NONE, lim);
}
/* }==================================================================== */

/* ---- Programs ---- */

static struct program *check_program(lua_State *L, int idx) {
  struct program *p = luaL_checkudata(L, idx, PROGRAM_MT);
  if (p->filter == NULL) luaL_error(L, "attempt to use a closed jq program");
  return p;
}

/* Free everything the program holds (its worker too); idempotent. */
static void program_release(struct program *p) {
  if (p->pid > 0 || p->sock >= 0) reap(p);
  free(p->filter);
  p->filter = NULL;
  ghl_buf_free(&p->in);
  ghl_buf_free(&p->errtext);
}

/* close(): tear the program down (also __gc and __close). */
static int program_close(lua_State *L) {
  program_release(luaL_checkudata(L, 1, PROGRAM_MT));
  return 0;
}

/* The guard's __close: a run left by a raise stops its worker. */
static int guard_close(lua_State *L) {
  struct guard *g = luaL_checkudata(L, 1, GUARD_MT);
  if (g->p->busy) {
    g->p->busy = 0;
    if (g->p->pid > 0) reap(g->p);
    g->p->errtext.len = 0;
  }
  return 0;
}

/* compile(filter [, limits]) -> program | nil, err.
** Kind "usage" with jq's messages for a filter that does not compile;
** kind "jq" when the worker compiling it was ended (err.reason). err.filter
** is the filter. The program is created closed with its guard, then
** filled, so the collector can always release it. */
static int jq_compile_filter(lua_State *L) {
  size_t n;
  const char *filter = luaL_checklstring(L, 1, &n);
  struct limits lim;
  struct program *p;
  struct guard *g;
  luaL_argcheck(L, strlen(filter) == n, 1, "filter contains a NUL byte");
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  if (!get_limits(L, 2, &lim)) return 2;
  p = lua_newuserdatauv(L, sizeof *p, 1);
  memset(p, 0, sizeof *p);
  p->sock = p->errfd = -1;
  luaL_setmetatable(L, PROGRAM_MT);                 /* prog */
  g = lua_newuserdatauv(L, sizeof *g, 0);
  g->p = p;
  luaL_setmetatable(L, GUARD_MT);
  lua_setiuservalue(L, -2, 1);
  p->filter = malloc(n + 1);
  if (p->filter == NULL) return luaL_error(L, "out of memory");
  memcpy(p->filter, filter, n + 1);
  if (spawn(L, p, &lim) != 0) {                     /* prog nil err */
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "filter");
    program_release(p);
    return 2;
  }
  return 1;
}

/* run(text [, opts [, fn]]) -> outputs | true | nil, err.
** Each JSON value of text (jq's input stream: one value, or several
** separated by whitespace) goes through the filter in the program's worker;
** `input` and `inputs` read the next values of the same text. Each output
** is dumped with opts (raw: strings as they are) and passed to fn, or
** collected in the returned array. Fails with kind "decode" for input
** that is not JSON (with jq's position), kind "jq" for a runtime error or a
** filter that was ended (see ended), kind "interrupted" on Ctrl-C; without
** fn, err.outputs holds the texts collected before the failure. halt stops
** quietly; halt_error fails with its message. fn may raise: the guard then
** stops the worker, and the next run starts another. Stack: +1 or +2. */
static int program_run(lua_State *L) {
  struct program *p = check_program(L, 1);
  size_t n, total = 0, len;
  const char *text = luaL_checklstring(L, 2, &n), *data;
  int flags = dump_flags(L, 3);
  int fnidx = 0, outidx = 0, r, type, why;
  lua_Integer count = 0;
  struct limits lim;
  struct request rq;
  unsigned char h[HEADER];
  double deadline;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TFUNCTION);
    fnidx = 4;
  }
  if (n > INT_MAX) return luaL_error(L, "JSON text too large (%d bytes at most)", INT_MAX);
  if (p->busy) return luaL_error(L, "attempt to run a jq program inside its own run");
  memset(&rq, 0, sizeof rq);
  rq.flags = flags;
  rq.raw = opt_bool(L, 3, "raw");
  if (!get_limits(L, 3, &lim)) return 2;
  lua_settop(L, 4);
  if (!fnidx) {
    lua_newtable(L);                                 /* ... outputs */
    outidx = lua_gettop(L);
  }
  if (p->pid == 0 && spawn(L, p, &lim) != 0) return 2;
  unlink_worker(p);                                  /* most recently used */
  link_worker(p);
  lua_getiuservalue(L, 1, 1);                        /* ... guard */
  lua_toclose(L, -1);
  p->busy = 1;
  deadline = lim.timeout > 0 ? mono() + lim.timeout : 0;
  rq.cpu = lim.timeout;
  rq.memory = lim.memory;
  put_header(h, F_RUN, sizeof rq + n);
  r = send_all(p, h, sizeof h, deadline);
  if (r == IO_READY) r = send_all(p, &rq, sizeof rq, deadline);
  if (r == IO_READY) r = send_all(p, text, n, deadline);
  while (r == IO_READY && (r = next_frame(p, deadline, &type, &data, &len)) == IO_READY) {
    switch (type) {
    case F_OUTPUT:
      total += len;
      if (lim.output > 0 && (double)total > lim.output) {
        why = END_OUTPUT;
        goto end;
      }
      lua_pushlstring(L, data, len);
      if (fnidx) {
        double t0 = mono();
        lua_pushvalue(L, fnidx);
        lua_insert(L, -2);
        lua_call(L, 1, 0);
        if (p->filter == NULL) return luaL_error(L, "jq program closed inside its own run");
        if (deadline > 0) deadline += mono() - t0;  /* fn's time is not the filter's */
      } else {
        lua_rawseti(L, outidx, ++count);
      }
      break;
    case F_DEBUG:
      fwrite(data, 1, len, stderr);
      fputc('\n', stderr);
      break;
    case F_DONE:
      p->busy = 0;
      pass_err(p);
      if (outidx) lua_pushvalue(L, outidx);
      else lua_pushboolean(L, 1);
      return 1;
    case F_ERROR:
    case F_HALT:
    case F_DECODE:
      p->busy = 0;
      pass_err(p);
      fail_text(L, type == F_DECODE ? "decode" : "jq",
                type == F_ERROR ? "jq: error: " : type == F_HALT ? "jq: halt_error: " : "invalid JSON input: ",
                data, len);
      goto failed;
    case F_MEMORY:
      why = END_MEMORY;
      goto end;
    default:                                         /* cannot happen: treat as a lost worker */
      r = IO_END;
      break;
    }
  }
  if (r == IO_NOMEM) return luaL_error(L, "out of memory");   /* the guard stops the worker */
  why = r == IO_TIMEOUT ? END_TIME : r == IO_INTERRUPT ? END_INTERRUPT : END_NONE;
end:
  p->busy = 0;
  ended(L, p, why, &lim);
failed:                                              /* ... nil err */
  if (outidx) {
    lua_pushvalue(L, outidx);
    lua_setfield(L, -2, "outputs");
  }
  return 2;
}

/* __tostring: "ghl.jq.program" plus " (closed)". */
static int program_tostring(lua_State *L) {
  struct program *p = luaL_checkudata(L, 1, PROGRAM_MT);
  lua_pushstring(L, p->filter ? "ghl.jq.program" : "ghl.jq.program (closed)");
  return 1;
}

/* ---- format ---- */

/* format(text [, opts]) -> text | nil, err(kind "decode").
** text must hold exactly one JSON value; it is printed with opts. */
static int jq_format_text(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  int flags = dump_flags(L, 2);
  struct box *b = new_box(L);                        /* box */
  jv extra;
  b->parser = new_parser(L, text, n);
  b->value = jv_parser_next(b->parser);
  if (!jv_is_valid(b->value)) {
    jv v = b->value;
    b->value = jv_invalid();
    if (jv_invalid_has_msg(jv_copy(v))) return fail_jv(L, "decode", "invalid JSON: ", jv_invalid_get_msg(v));
    jv_free(v);
    return ghl_fail(L, "decode", "invalid JSON: no value (empty text)");
  }
  extra = jv_parser_next(b->parser);
  if (jv_is_valid(extra)) {
    jv_free(extra);
    return ghl_fail(L, "decode", "invalid JSON: unexpected extra JSON values after the first");
  }
  if (jv_invalid_has_msg(jv_copy(extra))) return fail_jv(L, "decode", "invalid JSON: ", jv_invalid_get_msg(extra));
  jv_free(extra);
  b->value = jv_dump_string(b->value, flags);
  push_jv_string(L, b->value);
  box_release(b);
  return 1;
}

/* ---- Registration ---- */

static const luaL_Reg program_methods[] = {
  {"run", program_run},
  {"close", program_close},
  {NULL, NULL}
};

static const luaL_Reg jq_funcs[] = {
  {"compile", jq_compile_filter},
  {"format", jq_format_text},
  {NULL, NULL}
};

int luaopen_ghl_jq(lua_State *L) {
  const char *colors = getenv("JQ_COLORS");
  ghl_lib_need(L, &ghl_jq_lib);                     /* libjq, opened here (lib_jq.h) */
  if (colors && *colors) jq_set_colors(colors);     /* ignored when invalid, as jq does */
  luaL_newmetatable(L, PROGRAM_MT);
  lua_pushcfunction(L, program_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, program_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, program_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, program_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, GUARD_MT);
  lua_pushcfunction(L, guard_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newmetatable(L, BOX_MT);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newlib(L, jq_funcs);
  return 1;
}
