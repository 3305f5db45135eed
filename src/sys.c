/*
** ghl.sys: the few operating-system facilities Lua lacks and the library
** needs: clocks, sleeping, process ids and signals, terminals, secure random
** bytes, file modes, directory listings. Expected failures return nil,
** ghl.error; a failed system call returns nil, ghl.error, code (sys_fail:
** code is the errno's name, "ENOENT", also in the error's field code).
*/
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>
#include <openssl/rand.h>

#include "error.h"
#include "host.h"

/* ---- Results ---- */

/* The errnos these functions can meet, by the names luv gives them. */
static const struct { int e; const char *name; } errno_names[] = {
  {EACCES, "EACCES"}, {EBADF, "EBADF"}, {EBUSY, "EBUSY"}, {ECHILD, "ECHILD"},
  {EDQUOT, "EDQUOT"},
  {EEXIST, "EEXIST"}, {EINTR, "EINTR"}, {EINVAL, "EINVAL"}, {EIO, "EIO"},
  {EISDIR, "EISDIR"}, {ELOOP, "ELOOP"}, {EMFILE, "EMFILE"},
  {ENAMETOOLONG, "ENAMETOOLONG"}, {ENFILE, "ENFILE"}, {ENOENT, "ENOENT"},
  {ENOMEM, "ENOMEM"}, {ENOSPC, "ENOSPC"}, {ENOTDIR, "ENOTDIR"},
  {ENOTEMPTY, "ENOTEMPTY"}, {EPERM, "EPERM"}, {EROFS, "EROFS"},
  {ESRCH, "ESRCH"}, {EXDEV, "EXDEV"},
};

/* The result of a system call that failed with errno e, in the shape of
** lauxlib's luaL_fileresult: nil, message, code. The message is a
** ghl.error of kind `kind` whose text is "<what>: <strerror(e)>" (what:
** printf-style, lua_pushfstring's formats) and whose field code holds
** code, the errno's name ("ENOENT"; "E<number>" for one not listed).
** Returns 3, for "return sys_fail(...)". Stack: +3. */
static int sys_fail(lua_State *L, int e, const char *kind, const char *fmt, ...) {
  const char *what, *name = NULL;
  size_t i;
  va_list ap;
  for (i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
    if (errno_names[i].e == e) name = errno_names[i].name;
  lua_pushnil(L);
  va_start(ap, fmt);
  what = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  ghl_pusherror(L, kind, "%s: %s", what, strerror(e));   /* nil what err */
  lua_remove(L, -2);                                      /* nil err */
  if (name) lua_pushstring(L, name); else lua_pushfstring(L, "E%d", e);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "code");                            /* nil err code */
  return 3;
}

/* now() -> monotonic seconds (float), for measuring intervals. */
static int sys_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* time() -> wall-clock epoch seconds (float). */
static int sys_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* sleep(seconds) -> true, or nil, err(kind "interrupted") on Ctrl-C. */
static int sys_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (s <= 0) { lua_pushboolean(L, 1); return 1; }
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    if (ghl_interrupted) {
      ghl_interrupted = 0;
      return ghl_fail(L, "interrupted", "interrupted");
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int sys_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

/* Argument arg as a pid_t in min..INT_MAX, checked before the cast (a
** larger integer would wrap to another process); raises msg otherwise. */
static pid_t checkpid(lua_State *L, int arg, lua_Integer min, const char *msg) {
  lua_Integer v = luaL_checkinteger(L, arg);
  if (v < min || v > INT_MAX) luaL_argerror(L, arg, msg);
  return (pid_t)v;
}

/* kill(pid, sig=15) -> true, or nil, err. kill(pid, 0) tests liveness. */
static int sys_kill(lua_State *L) {
  pid_t pid = checkpid(L, 1, 1, "pid must be positive");
  int sig = (int)luaL_optinteger(L, 2, SIGTERM);
  if (kill(pid, sig) != 0)
    return sys_fail(L, errno, "os", "kill %d", (int)pid);
  lua_pushboolean(L, 1);
  return 1;
}

/* isatty(fd) -> boolean (0 stdin, 1 stdout, 2 stderr). */
static int sys_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* readable(fd [, seconds=0]) -> true when a read on fd would not block
** (data, end of file or an error to report), false when seconds passed
** first. A buffered Lua file may already hold what poll() no longer
** sees: make it unbuffered (f:setvbuf("no")) before polling its fd. */
static int sys_readable(lua_State *L) {
  struct pollfd p;
  double secs = luaL_optnumber(L, 2, 0);
  int r;
  p.fd = (int)luaL_checkinteger(L, 1);
  p.events = POLLIN;
  p.revents = 0;
  luaL_argcheck(L, secs >= 0 && secs <= 86400, 2, "out of range (0..86400)");
  r = poll(&p, 1, (int)(secs * 1000));
  lua_pushboolean(L, r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0);
  return 1;
}

/* random_bytes(n) -> string of n bytes from OpenSSL's CSPRNG. */
static int sys_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_Buffer b;
  luaL_argcheck(L, n >= 0 && n <= 65536, 1, "out of range (0..65536)");
  if (RAND_bytes((unsigned char *)luaL_buffinitsize(L, &b, (size_t)n), (int)n) != 1)
    return ghl_fail(L, "crypto", "no random bytes available");
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

/* stat(path) -> {mode=, uid=, size=, mtime=, type="file"|"dir"|"other"},
** or nil, err. */
static int sys_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0)
    return sys_fail(L, errno, "os", "%s", path);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, st.st_mode & 07777);
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, st.st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, st.st_mtime);
  lua_setfield(L, -2, "mtime");
  lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : "other");
  lua_setfield(L, -2, "type");
  return 1;
}

/* chmod(path, mode) -> true, or nil, err. */
static int sys_chmod(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (chmod(path, (mode_t)luaL_checkinteger(L, 2)) != 0)
    return sys_fail(L, errno, "os", "chmod %s", path);
  lua_pushboolean(L, 1);
  return 1;
}

/* mkdir(path, mode) -> true (also when it exists), or nil, err. */
static int sys_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (mkdir(path, (mode_t)luaL_optinteger(L, 2, 0700)) != 0 && errno != EEXIST)
    return sys_fail(L, errno, "os", "mkdir %s", path);
  lua_pushboolean(L, 1);
  return 1;
}

/* readpass(prompt) -> string typed on the terminal without echo, or nil,
** err when there is no terminal. Reads /dev/tty, so it works while stdin
** is a pipe; the prompt goes to the terminal too. */
static int sys_readpass(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "Secret: ");
  struct termios old, quiet;
  char line[4096];
  size_t n;
  int ok;
  FILE *tty = fopen("/dev/tty", "r+");
  if (tty == NULL) return ghl_fail(L, "usage", "no terminal to prompt on");
  fputs(prompt, tty);
  fflush(tty);
  ok = tcgetattr(fileno(tty), &old) == 0;
  if (ok) {
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
  }
  if (fgets(line, sizeof line, tty) == NULL) line[0] = '\0';
  if (ok) tcsetattr(fileno(tty), TCSAFLUSH, &old);
  fputc('\n', tty);
  fclose(tty);
  n = strcspn(line, "\r\n");
  lua_pushlstring(L, line, n);
  memset(line, 0, sizeof line);
  return 1;
}

/* closef of the streams sys.open makes (liolib's io_fclose). */
static int stream_close(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  int res = fclose(p->f);
  return luaL_fileresult(L, (res == 0), NULL);
}

/* open(dir, name, mode) -> a Lua file, or nil, err. Opens the file name
** inside the directory dir (which must itself be no symlink), never
** following a symlink in name, and only a regular file. mode: "r" (read),
** "w" (create; fails when it exists) or "w+" (create or truncate). The
** file is owned by Lua (closed by :close() or the collector). */
static int sys_open(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  const char *name = luaL_checkstring(L, 2);
  const char *mode = luaL_checkstring(L, 3);
  int flags, dfd, fd;
  struct stat st;
  luaL_Stream *p;
  if (strcmp(mode, "r") == 0) flags = O_RDONLY;
  else if (strcmp(mode, "w") == 0) flags = O_WRONLY | O_CREAT | O_EXCL;
  else if (strcmp(mode, "w+") == 0) flags = O_WRONLY | O_CREAT | O_TRUNC;
  else return luaL_argerror(L, 3, "mode must be r, w or w+");
  if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || *name == '\0')
    return luaL_argerror(L, 2, "a file name, not a path");
  p = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
  p->closef = NULL;                                 /* closed until opened */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return sys_fail(L, errno, "io", "%s", dir);
  fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0666);
  close(dfd);
  if (fd < 0) {
    if (errno == ELOOP) return ghl_fail(L, "sandbox", "%s/%s is a symbolic link", dir, name);
    if (errno == EEXIST) return ghl_fail(L, "exists", "%s/%s exists", dir, name);
    return sys_fail(L, errno, "io", "%s/%s", dir, name);
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ghl_fail(L, "sandbox", "%s/%s is not a regular file", dir, name);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  p->f = fdopen(fd, flags == O_RDONLY ? "rb" : "wb");
  if (p->f == NULL) {
    close(fd);
    return sys_fail(L, errno, "io", "%s/%s", dir, name);
  }
  p->closef = stream_close;
  return 1;
}

/* fsync(file) -> true, or nil, err: flush a Lua file's buffer and make
** its bytes durable (fflush + fsync), before a rename publishes it. */
static int sys_fsync(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  luaL_argcheck(L, p->closef != NULL, 1, "a closed file");
  if (fflush(p->f) != 0 || fsync(fileno(p->f)) != 0)
    return sys_fail(L, errno, "io", "fsync");
  lua_pushboolean(L, 1);
  return 1;
}

/* realpath(path) -> canonical absolute path (symlinks resolved), or nil,
** err when it does not exist. */
static int sys_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char *r = realpath(path, NULL);
  if (r == NULL) return sys_fail(L, errno, "os", "%s", path);
  lua_pushstring(L, r);
  free(r);
  return 1;
}

/* lstat(path) -> the type of path itself: "file", "dir", "link" or
** "other", or nil, err. */
static int sys_lstat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (lstat(path, &st) != 0) return sys_fail(L, errno, "os", "%s", path);
  lua_pushstring(L, S_ISLNK(st.st_mode) ? "link" : S_ISREG(st.st_mode) ? "file"
                    : S_ISDIR(st.st_mode) ? "dir" : "other");
  return 1;
}

/* Close the directory held by a listdir box (its __gc; idempotent). */
static int dirbox_close(lua_State *L) {
  DIR **d = (DIR **)luaL_checkudata(L, 1, "ghl.sys.dir");
  if (*d) closedir(*d);
  *d = NULL;
  return 0;
}

/* listdir(path) -> array of the entry names in directory path (without
** "." and ".."), in no particular order, or nil, err. The DIR lives in a
** userdata box made before opendir(), so a memory error while the names
** are pushed still closes it (through __gc). */
static int sys_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR **d = (DIR **)lua_newuserdatauv(L, sizeof *d, 0);
  struct dirent *e;
  lua_Integer n = 0;
  *d = NULL;
  if (luaL_newmetatable(L, "ghl.sys.dir")) {
    lua_pushcfunction(L, dirbox_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);                          /* box */
  *d = opendir(path);
  if (*d == NULL) return sys_fail(L, errno, "os", "%s", path);
  lua_newtable(L);                                  /* box list */
  while ((e = readdir(*d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(*d);
  *d = NULL;
  return 1;
}

/* alive(pid) -> whether a process with this pid exists. */
static int sys_alive(lua_State *L) {
  lua_Integer v = luaL_checkinteger(L, 1);
  lua_pushboolean(L, v > 0 && v <= INT_MAX && (kill((pid_t)v, 0) == 0 || errno == EPERM));
  return 1;
}

/* ---- Child processes (spawn, waitpid, killpg) ---- */

extern char **environ;

/* spawn(argv, opts) -> pid of a new process running argv (an array of
** strings: the program, found on PATH when it has no slash, then its
** arguments; no shell is involved), or nil, err when it cannot start.
** opts (all optional):
**   env     {NAME = value}: set in the child's environment on top of this
**           process's (value false: removed from it).
**   setsid  true: the child leads a new session and process group (its
**           pid), so the terminal's Ctrl-C never reaches it and killpg
**           reaches everything it started.
**   stdin   path opened for reading as fd 0.
**   stdout, stderr   path created or truncated (mode 0600) as fd 1 / 2;
**           the same path for both: one file, opened once.
** The child starts with every signal at its default action and none
** blocked. The caller owns the child: it must reap it (waitpid) once it
** has ended. Memory: the argv and envp arrays live in a userdata and the
** "NAME=value" strings in a table, both on the Lua stack until the call
** returns; the attributes and file actions are destroyed before returning. */
static int sys_spawn(lua_State *L) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t all, none;
  const char **args, **envp;
  const char *in = NULL, *out = NULL, *err = NULL;
  lua_Integer argc, i, nenv = 0, nover = 0, k;
  short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
  pid_t pid;
  int rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_isnoneornil(L, 2)) { lua_settop(L, 1); lua_newtable(L); }
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  argc = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, argc >= 1, 1, "an array of strings with the program first");
  for (i = 1; i <= argc; i++) {
    size_t n;
    const char *a;
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING) return luaL_argerror(L, 1, "every argument must be a string");
    a = lua_tolstring(L, -1, &n);
    if (strlen(a) != n) return luaL_argerror(L, 1, "an argument holds a NUL byte");
    lua_pop(L, 1);
  }
  if (lua_getfield(L, 2, "stdin") != LUA_TNIL)
    in = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : (luaL_argerror(L, 2, "stdin must be a path"), NULL);
  if (lua_getfield(L, 2, "stdout") != LUA_TNIL)
    out = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : (luaL_argerror(L, 2, "stdout must be a path"), NULL);
  if (lua_getfield(L, 2, "stderr") != LUA_TNIL)
    err = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : (luaL_argerror(L, 2, "stderr must be a path"), NULL);
  if (lua_getfield(L, 2, "setsid") != LUA_TNIL && lua_toboolean(L, -1)) flags |= POSIX_SPAWN_SETSID;
  lua_settop(L, 2);                              /* the paths stay anchored in opts */
  if (lua_getfield(L, 2, "env") == LUA_TNIL) { lua_pop(L, 1); lua_newtable(L); }
  luaL_argcheck(L, lua_istable(L, 3), 2, "env must be a table");
  lua_pushnil(L);                                /* env ... key */
  while (lua_next(L, 3)) {
    size_t n;
    const char *name;
    if (lua_type(L, -2) != LUA_TSTRING) return luaL_argerror(L, 2, "env names must be strings");
    name = lua_tolstring(L, -2, &n);
    if (n == 0 || strchr(name, '=') || strlen(name) != n)
      return luaL_argerror(L, 2, "an env name is empty or holds '=' or a NUL byte");
    if (!(lua_type(L, -1) == LUA_TSTRING || (lua_isboolean(L, -1) && !lua_toboolean(L, -1))))
      return luaL_argerror(L, 2, "env values must be strings (false removes one)");
    if (lua_type(L, -1) == LUA_TSTRING && strlen(lua_tostring(L, -1)) != lua_rawlen(L, -1))
      return luaL_argerror(L, 2, "an env value holds a NUL byte");
    nover++;
    lua_pop(L, 1);
  }
  for (k = 0; environ[k]; k++) nenv++;
  lua_newtable(L);                               /* 4: the built "NAME=value" strings */
  args = (const char **)lua_newuserdatauv(L, sizeof *args * (size_t)(argc + 1), 0);      /* 5 */
  envp = (const char **)lua_newuserdatauv(L, sizeof *envp * (size_t)(nenv + nover + 1), 0); /* 6 */
  for (i = 1; i <= argc; i++) {
    lua_rawgeti(L, 1, i);
    args[i - 1] = lua_tostring(L, -1);           /* anchored in argv */
    lua_pop(L, 1);
  }
  args[argc] = NULL;
  i = 0;
  for (k = 0; environ[k]; k++) {                 /* inherited, unless overridden */
    const char *eq = strchr(environ[k], '=');
    if (eq == NULL) continue;
    lua_pushlstring(L, environ[k], (size_t)(eq - environ[k]));
    if (lua_rawget(L, 3) == LUA_TNIL) envp[i++] = environ[k];
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
      envp[i++] = lua_tostring(L, -1);
      lua_rawseti(L, 4, (lua_Integer)lua_rawlen(L, 4) + 1);   /* anchored in the table */
    }
    lua_pop(L, 1);
  }
  envp[i] = NULL;
  if (posix_spawn_file_actions_init(&fa) != 0) return ghl_fail(L, "os", "spawn: out of memory");
  if (posix_spawnattr_init(&attr) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return ghl_fail(L, "os", "spawn: out of memory");
  }
  sigfillset(&all);
  sigemptyset(&none);
  rc = posix_spawnattr_setflags(&attr, flags);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
  if (rc == 0 && in) rc = posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
  if (rc == 0 && out) rc = posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (rc == 0 && err && out && strcmp(err, out) == 0) rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
  else if (rc == 0 && err) rc = posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (rc == 0) rc = posix_spawnp(&pid, args[0], &fa, &attr, (char *const *)args, (char *const *)envp);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return sys_fail(L, rc, "os", "cannot run %s", args[0]);
  lua_pushinteger(L, (lua_Integer)pid);
  return 1;
}

/* waitpid(pid [, nohang=false]) -> how the child pid ended: "exit", code
** or "signal", signo (it is reaped); false when nohang and it still runs;
** nil, err when pid is no child of this process (or Ctrl-C interrupted a
** blocking wait: kind "interrupted"). */
static int sys_waitpid(lua_State *L) {
  pid_t pid = checkpid(L, 1, 1, "pid must be positive");
  int nohang = lua_toboolean(L, 2), st = 0;
  pid_t r;
  while ((r = waitpid(pid, &st, nohang ? WNOHANG : 0)) < 0 && errno == EINTR) {
    if (ghl_interrupted) {
      ghl_interrupted = 0;
      return ghl_fail(L, "interrupted", "interrupted");
    }
  }
  if (r < 0) return sys_fail(L, errno, "os", "waitpid %d", (int)pid);
  if (r == 0) { lua_pushboolean(L, 0); return 1; }
  if (WIFSIGNALED(st)) {
    lua_pushliteral(L, "signal");
    lua_pushinteger(L, WTERMSIG(st));
  } else {
    lua_pushliteral(L, "exit");
    lua_pushinteger(L, WEXITSTATUS(st));
  }
  return 2;
}

/* killpg(pgid, sig=15) -> true, or nil, err: signal a whole process group
** (a child spawned with setsid leads one, its pid). */
static int sys_killpg(lua_State *L) {
  pid_t pg = checkpid(L, 1, 2, "process group must be above 1");
  int sig = (int)luaL_optinteger(L, 2, SIGTERM);
  if (killpg(pg, sig) != 0) return sys_fail(L, errno, "os", "killpg %d", (int)pg);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg sys_funcs[] = {
  {"readpass", sys_readpass},
  {"alive", sys_alive},
  {"now", sys_now},
  {"time", sys_time},
  {"sleep", sys_sleep},
  {"getpid", sys_getpid},
  {"kill", sys_kill},
  {"isatty", sys_isatty},
  {"readable", sys_readable},
  {"random_bytes", sys_random_bytes},
  {"stat", sys_stat},
  {"chmod", sys_chmod},
  {"mkdir", sys_mkdir},
  {"open", sys_open},
  {"realpath", sys_realpath},
  {"fsync", sys_fsync},
  {"lstat", sys_lstat},
  {"listdir", sys_listdir},
  {"spawn", sys_spawn},
  {"waitpid", sys_waitpid},
  {"killpg", sys_killpg},
  {NULL, NULL}
};

int luaopen_ghl_sys(lua_State *L) {
  luaL_newlib(L, sys_funcs);
  return 1;
}
