/*
 * vhostfd: the few Linux system calls the vhost-user adapter and back-end need and Node does not
 * offer: unix sockets with fd passing (SCM_RIGHTS), memfd, shared mappings, eventfd, and a
 * readiness watch on any fd that runs on Node's own event loop (uv_poll).
 *
 * Every fd is created close-on-exec. Mappings are reached through handles and explicit copies
 * (no ArrayBuffer aliases them), so unmapping can never leave a dangling view: a closed handle
 * throws instead. A mapping never starts past the end of its file, and a copy that meets pages the
 * file no longer backs (the peer shrank it: SIGBUS) throws instead of killing the process.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "vhostfd.h"


#define MAX_FDS 16


napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[256];
  const char *code = strerrorname_np(err);
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, code ? code : "EUNKNOWN", message);
  return NULL;
}

napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  if (napi_create_int64(env, v, &out) != napi_ok) return NULL;
  return out;
}

napi_value undefined_value(napi_env env) {
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

int arg_int(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_bigint) {
    bool lossless;
    if (napi_get_value_bigint_int64(env, v, out, &lossless) != napi_ok) return -1;
    if (!lossless) {
      napi_throw_range_error(env, "ERANGE", "vhostfd: a bigint argument does not fit in 64 signed bits");
      return -1;
    }
    return 0;
  }
  if (t != napi_number) {
    napi_throw_type_error(env, "EINVAL", "vhostfd: expected a number");
    return -1;
  }
  return napi_get_value_int64(env, v, out) == napi_ok ? 0 : -1;
}

static int set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -1;
  return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static int fill_address(napi_env env, napi_value v, struct sockaddr_un *addr) {
  size_t len;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (napi_get_value_string_utf8(env, v, addr->sun_path, sizeof addr->sun_path, &len) != napi_ok) return -1;
  if (len >= sizeof addr->sun_path - 1) {
    napi_throw_error(env, "ENAMETOOLONG", "socket path is longer than 107 bytes");
    return -1;
  }
  return 0;
}

/* connect(path) -> fd (non-blocking once connected) */
static napi_value js_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un addr;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || fill_address(env, argv[0], &addr) != 0) return NULL;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "connect", err);
  }
  set_nonblocking(fd);
  return make_int(env, fd);
}

/* listen(path, backlog) -> fd (non-blocking) */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct sockaddr_un addr;
  int64_t backlog = 16;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || fill_address(env, argv[0], &addr) != 0) return NULL;
  if (argc > 1 && arg_int(env, argv[1], &backlog) != 0) return NULL;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, (int)backlog) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind/listen", err);
  }
  return make_int(env, fd);
}

/* accept(fd) -> fd, or -1 when nothing is waiting */
static napi_value js_accept(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &fd) != 0) return NULL;
  int conn = accept4((int)fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (conn < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return make_int(env, -1);
    return throw_errno(env, "accept", errno);
  }
  return make_int(env, conn);
}

/* socketPair() -> [fd, fd], both non-blocking */
static napi_value js_socket_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  napi_value out;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) return throw_errno(env, "socketpair", errno);
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_set_element(env, out, 0, make_int(env, sv[0])));
  CHECK(napi_set_element(env, out, 1, make_int(env, sv[1])));
  return out;
}

/*
 * sendMessage(fd, bytes, fds, timeoutMs) -> bytes sent. The bytes go out in one sendmsg with the
 * fds attached; a full socket buffer is waited for (poll) up to timeoutMs, then ETIMEDOUT.
 */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int64_t fd, timeout = 1000;
  void *data;
  size_t length;
  uint32_t nfds = 0;
  int fds[MAX_FDS];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int(env, argv[0], &fd) != 0) return NULL;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &length));
  if (argc > 2) {
    bool is_array;
    CHECK(napi_is_array(env, argv[2], &is_array));
    if (is_array) {
      CHECK(napi_get_array_length(env, argv[2], &nfds));
      if (nfds > MAX_FDS) {
        napi_throw_error(env, "EINVAL", "sendMessage: too many fds");
        return NULL;
      }
      for (uint32_t i = 0; i < nfds; i++) {
        napi_value e;
        int64_t v;
        CHECK(napi_get_element(env, argv[2], i, &e));
        if (arg_int(env, e, &v) != 0) return NULL;
        fds[i] = (int)v;
      }
    }
  }
  if (argc > 3) {
    napi_valuetype t;
    CHECK(napi_typeof(env, argv[3], &t));
    if (t != napi_undefined && arg_int(env, argv[3], &timeout) != 0) return NULL;
  }
  size_t sent = 0;
  int first = 1;
  while (sent < length || (first && length == 0)) {
    struct iovec iov = {.iov_base = (char *)data + sent, .iov_len = length - sent};
    char control[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (first && nfds > 0) {
      memset(control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
      struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
      memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    /* MSG_DONTWAIT: never block, even if the peer cleared O_NONBLOCK on the shared socket. */
    ssize_t n = sendmsg((int)fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        struct pollfd p = {.fd = (int)fd, .events = POLLOUT};
        int r = timeout > 0 ? poll(&p, 1, (int)timeout) : 0;
        if (r == 0) return throw_errno(env, "sendmsg", ETIMEDOUT);
        continue;
      }
      return throw_errno(env, "sendmsg", errno);
    }
    first = 0;
    sent += (size_t)n;
    if (length == 0) break;
  }
  return make_int(env, (int64_t)sent);
}

/*
 * receiveMessage(fd, maxBytes) -> { data: Buffer, fds: number[], truncatedFds: bool } ;
 * data is empty at end of stream; null when nothing is waiting (EAGAIN).
 */
static napi_value js_receive(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t fd, max;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int(env, argv[0], &fd) != 0 || arg_int(env, argv[1], &max) != 0) return NULL;
  if (max <= 0 || max > (1 << 20)) {
    napi_throw_range_error(env, "EINVAL", "receiveMessage: maxBytes out of range");
    return NULL;
  }
  void *bytes;
  napi_value buffer;
  CHECK(napi_create_buffer(env, (size_t)max, &bytes, &buffer));
  char control[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  struct iovec iov = {.iov_base = bytes, .iov_len = (size_t)max};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  ssize_t n;
  do {
    n = recvmsg((int)fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      napi_value nothing;
      napi_get_null(env, &nothing);
      return nothing;
    }
    if (errno == ECONNRESET) n = 0;
    else return throw_errno(env, "recvmsg", errno);
  }
  napi_value out, fd_list, data, flag;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_array(env, &fd_list));
  uint32_t count = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *received = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < k; i++) CHECK(napi_set_element(env, fd_list, count++, make_int(env, received[i])));
  }
  CHECK(napi_create_buffer_copy(env, (size_t)n, bytes, NULL, &data));
  CHECK(napi_set_named_property(env, out, "data", data));
  CHECK(napi_set_named_property(env, out, "fds", fd_list));
  CHECK(napi_get_boolean(env, (msg.msg_flags & MSG_CTRUNC) != 0, &flag));
  CHECK(napi_set_named_property(env, out, "truncatedFds", flag));
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &fd) != 0) return NULL;
  if (fd >= 0 && close((int)fd) != 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return undefined_value(env);
}

/* shutdown(fd): both directions; wakes a peer blocked on the socket */
static napi_value js_shutdown(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &fd) != 0) return NULL;
  shutdown((int)fd, SHUT_RDWR);
  return undefined_value(env);
}

/* memfd(name, size) -> fd */
static napi_value js_memfd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char name[64];
  size_t len;
  int64_t size;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return NULL;
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  if (arg_int(env, argv[1], &size) != 0) return NULL;
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  if (ftruncate(fd, (off_t)size) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "ftruncate", err);
  }
  return make_int(env, fd);
}

/* A shared mapping, reached only through its handle. */
static napi_value js_eventfd(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return throw_errno(env, "eventfd", errno);
  return make_int(env, fd);
}

/*
 * signal(fd) -> whether the signal went out: adds 1 to an eventfd without ever blocking (the fd
 * may be a blocking one the peer made); false when the fd cannot take it now (full).
 */
static napi_value js_signal(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int64_t fd;
  uint64_t one = 1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &fd) != 0) return NULL;
  struct pollfd p = {.fd = (int)fd, .events = POLLOUT};
  int ready;
  do {
    ready = poll(&p, 1, 0);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return throw_errno(env, "eventfd poll", errno);
  if (p.revents & POLLNVAL) return throw_errno(env, "eventfd write", EBADF);
  bool sent = false;
  if (ready > 0 && (p.revents & POLLOUT)) {
    if (write((int)fd, &one, sizeof one) == sizeof one) sent = true;
    else if (errno != EAGAIN) return throw_errno(env, "eventfd write", errno);
  }
  CHECK(napi_get_boolean(env, sent, &out));
  return out;
}

/* pipe() -> [read end, write end], both non-blocking (tests play peers that pass pipes) */
static napi_value js_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int ends[2];
  napi_value out;
  if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) return throw_errno(env, "pipe2", errno);
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_set_element(env, out, 0, make_int(env, ends[0])));
  CHECK(napi_set_element(env, out, 1, make_int(env, ends[1])));
  return out;
}

/* setBlocking(fd, blocking): sets or clears O_NONBLOCK (tests play peers that clear it) */
static napi_value js_set_blocking(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t fd;
  bool blocking;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int(env, argv[0], &fd) != 0) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &blocking));
  int flags = fcntl((int)fd, F_GETFL);
  if (flags < 0 || fcntl((int)fd, F_SETFL, blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK) != 0)
    return throw_errno(env, "fcntl", errno);
  return undefined_value(env);
}

/* drain(fd) -> the eventfd's count (0 when it was not signalled) */
static napi_value js_drain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t fd;
  uint64_t value = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &fd) != 0) return NULL;
  if (read((int)fd, &value, sizeof value) != sizeof value) {
    if (errno == EAGAIN) return make_int(env, 0);
    return throw_errno(env, "eventfd read", errno);
  }
  return make_int(env, (int64_t)value);
}

/*
 * A readiness watch: the callback runs on Node's loop (through napi_make_callback, so promise
 * reactions run right after it) each time the fd is readable or hung up. The JS handle owns a
 * box; the uv handle is freed by its close callback, never while libuv still holds it.
 */
typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
} watch_t;

typedef struct {
  watch_t *watch;
} watch_box_t;

static void watch_closed(uv_handle_t *handle) { free(handle->data); }

static void watch_stop(napi_env env, watch_box_t *box) {
  watch_t *w = box->watch;
  if (!w) return;
  box->watch = NULL;
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->context);
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static void watch_event(uv_poll_t *poll, int status, int events) {
  watch_t *w = poll->data;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value callback, global, argv[1], result;
  napi_open_handle_scope(env, &scope);
  napi_get_reference_value(env, w->callback, &callback);
  napi_get_global(env, &global);
  argv[0] = make_int(env, status < 0 ? -1 : events);
  if (napi_make_callback(env, w->context, global, callback, 1, argv, &result) == napi_pending_exception) {
    napi_value exception;
    napi_get_and_clear_last_exception(env, &exception);
    napi_fatal_exception(env, exception);
  }
  napi_close_handle_scope(env, scope);
}

static void watch_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  watch_stop(env, data);
  free(data);
}

/* watch(fd, callback) -> handle */
static napi_value js_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], handle, name;
  int64_t fd;
  struct uv_loop_s *loop;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int(env, argv[0], &fd) != 0) return NULL;
  CHECK(napi_get_uv_event_loop(env, &loop));
  watch_t *w = calloc(1, sizeof *w);
  watch_box_t *box = calloc(1, sizeof *box);
  if (!w || !box) {
    free(w);
    free(box);
    return throw_errno(env, "calloc", ENOMEM);
  }
  w->env = env;
  int rc = uv_poll_init(loop, &w->poll, (int)fd);
  if (rc != 0) {
    free(w);
    free(box);
    return throw_errno(env, "uv_poll_init", -rc);
  }
  w->poll.data = w;
  box->watch = w;
  CHECK(napi_create_reference(env, argv[1], 1, &w->callback));
  CHECK(napi_create_string_utf8(env, "vhostfd.watch", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &w->context));
  uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, watch_event);
  CHECK(napi_create_external(env, box, watch_finalize, NULL, &handle));
  return handle;
}

/* unwatch(handle): stops the watch; the callback never runs again */
static napi_value js_unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  watch_box_t *box = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&box) != napi_ok || !box) return NULL;
  watch_stop(env, box);
  return undefined_value(env);
}

#define EXPORT(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor functions[] = {
      EXPORT("connect", js_connect),       EXPORT("listen", js_listen),       EXPORT("accept", js_accept),
      EXPORT("socketPair", js_socket_pair), EXPORT("sendMessage", js_send),    EXPORT("receiveMessage", js_receive),
      EXPORT("close", js_close),           EXPORT("shutdown", js_shutdown),   EXPORT("memfd", js_memfd),
      EXPORT("map", js_map),               EXPORT("unmap", js_unmap),         EXPORT("address", js_address),
      EXPORT("read", js_read),             EXPORT("write", js_write),         EXPORT("discard", js_discard),
      EXPORT("residentPages", js_resident), EXPORT("eventfd", js_eventfd),    EXPORT("signal", js_signal),
      EXPORT("drain", js_drain),           EXPORT("setBlocking", js_set_blocking),
      EXPORT("pipe", js_pipe),           EXPORT("watch", js_watch),         EXPORT("unwatch", js_unwatch),
  };
  CHECK(napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions));
  install_bus_handler();
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
