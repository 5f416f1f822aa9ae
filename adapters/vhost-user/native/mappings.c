/*
 * vhostfd mappings: shared mappings of memfds reached through handles and explicit copies (no
 * ArrayBuffer aliases them), and the SIGBUS guard that turns a copy over pages the file no longer
 * backs into an exception instead of a crash.
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

typedef struct {
  uint8_t *base;
  uint64_t length;
} mapping_t;

static void mapping_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  mapping_t *m = data;
  if (m->base) munmap(m->base, m->length);
  free(m);
}

static mapping_t *get_mapping(napi_env env, napi_value v) {
  mapping_t *m = NULL;
  if (napi_get_value_external(env, v, (void **)&m) != napi_ok || m == NULL) {
    napi_throw_type_error(env, "EINVAL", "vhostfd: not a mapping handle");
    return NULL;
  }
  if (m->base == NULL) {
    napi_throw_error(env, "EBADF", "vhostfd: the mapping was unmapped");
    return NULL;
  }
  return m;
}

/*
 * Copies to and from shared mappings are guarded against SIGBUS: the fd's owner may shrink the
 * file after it was mapped, and touching the pages past its new end raises SIGBUS. The handler
 * jumps back out of a guarded copy (which then fails); any other SIGBUS goes to the handler that
 * was installed before, by default ending the process as usual.
 */
static __thread __attribute__((tls_model("initial-exec"))) sigjmp_buf *volatile bus_guard;
static struct sigaction previous_bus_action;
static int bus_handler_installed;

static void on_sigbus(int sig, siginfo_t *info, void *context) {
  sigjmp_buf *guard = bus_guard;
  if (guard) {
    bus_guard = NULL;
    siglongjmp(*guard, 1);
  }
  if (previous_bus_action.sa_flags & SA_SIGINFO) {
    previous_bus_action.sa_sigaction(sig, info, context);
    return;
  }
  if (previous_bus_action.sa_handler != SIG_DFL && previous_bus_action.sa_handler != SIG_IGN) {
    previous_bus_action.sa_handler(sig);
    return;
  }
  /* The default action: it takes effect once this handler returns (the signal is blocked until then). */
  signal(SIGBUS, SIG_DFL);
  raise(SIGBUS);
}

void install_bus_handler(void) {
  if (bus_handler_installed) return;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_sigbus;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGBUS, &action, &previous_bus_action) == 0) bus_handler_installed = 1;
}

/* memcpy that returns -1 instead of dying when the source or destination raises SIGBUS. */
static int guarded_copy(void *to, const void *from, size_t length) {
  sigjmp_buf jump;
  if (length == 0) return 0;
  if (sigsetjmp(jump, 1) != 0) return -1;
  bus_guard = &jump;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  memcpy(to, from, length);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  bus_guard = NULL;
  return 0;
}

static napi_value throw_bus_error(napi_env env, const char *what) {
  char message[128];
  snprintf(message, sizeof message, "%s: the mapped file is shorter than the access (SIGBUS)", what);
  napi_throw_error(env, "EFAULT", message);
  return NULL;
}

static int in_bounds(napi_env env, mapping_t *m, int64_t offset, int64_t length) {
  if (offset < 0 || length < 0 || (uint64_t)offset > m->length || (uint64_t)length > m->length - (uint64_t)offset) {
    napi_throw_range_error(env, "ERANGE", "vhostfd: access outside the mapping");
    return 0;
  }
  return 1;
}

/* map(fd, length, offset) -> handle (MAP_SHARED, MAP_NORESERVE) */
napi_value js_map(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int64_t fd, length, offset = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int(env, argv[0], &fd) != 0 || arg_int(env, argv[1], &length) != 0) return NULL;
  if (argc > 2 && arg_int(env, argv[2], &offset) != 0) return NULL;
  if (length <= 0 || offset < 0) {
    napi_throw_range_error(env, "EINVAL", "map: length must be positive and offset not negative");
    return NULL;
  }
  struct stat st;
  if (fstat((int)fd, &st) != 0) return throw_errno(env, "fstat", errno);
  /* Pages past the end of a file raise SIGBUS when touched: such a mapping is refused up front. */
  if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < (uint64_t)offset + (uint64_t)length) {
    char message[160];
    snprintf(message, sizeof message, "map: the fd holds %lld bytes, fewer than the %llu to map", (long long)st.st_size,
             (unsigned long long)((uint64_t)offset + (uint64_t)length));
    napi_throw_range_error(env, "ERANGE", message);
    return NULL;
  }
  void *p = mmap(NULL, (size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, (int)fd, (off_t)offset);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  mapping_t *m = malloc(sizeof *m);
  if (!m) {
    munmap(p, (size_t)length);
    return throw_errno(env, "malloc", ENOMEM);
  }
  m->base = p;
  m->length = (uint64_t)length;
  napi_value handle;
  CHECK(napi_create_external(env, m, mapping_finalize, NULL, &handle));
  return handle;
}

napi_value js_unmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  mapping_t *m = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&m) != napi_ok || !m) return NULL;
  if (m->base) munmap(m->base, m->length);
  m->base = NULL;
  return undefined_value(env);
}

/* address(handle) -> bigint: the mapping's address in this process */
napi_value js_address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  mapping_t *m = argc < 1 ? NULL : get_mapping(env, argv[0]);
  if (!m) return NULL;
  CHECK(napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)m->base, &out));
  return out;
}

/* read(handle, offset, length) -> Buffer (a copy) */
napi_value js_read(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  int64_t offset, length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  mapping_t *m = argc < 3 ? NULL : get_mapping(env, argv[0]);
  if (!m || arg_int(env, argv[1], &offset) != 0 || arg_int(env, argv[2], &length) != 0) return NULL;
  if (!in_bounds(env, m, offset, length)) return NULL;
  void *bytes;
  CHECK(napi_create_buffer(env, (size_t)length, &bytes, &out));
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (guarded_copy(bytes, m->base + offset, (size_t)length) != 0) return throw_bus_error(env, "read");
  return out;
}

/* write(handle, offset, bytes) */
napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int64_t offset;
  void *data;
  size_t length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  mapping_t *m = argc < 3 ? NULL : get_mapping(env, argv[0]);
  if (!m || arg_int(env, argv[1], &offset) != 0) return NULL;
  CHECK(napi_get_buffer_info(env, argv[2], &data, &length));
  if (!in_bounds(env, m, offset, (int64_t)length)) return NULL;
  if (guarded_copy(m->base + offset, data, length) != 0) return throw_bus_error(env, "write");
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return undefined_value(env);
}

/* discard(handle, offset, length): MADV_REMOVE, freeing the pages (a hole in the memfd) */
napi_value js_discard(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int64_t offset, length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  mapping_t *m = argc < 3 ? NULL : get_mapping(env, argv[0]);
  if (!m || arg_int(env, argv[1], &offset) != 0 || arg_int(env, argv[2], &length) != 0) return NULL;
  if (!in_bounds(env, m, offset, length)) return NULL;
  if (length > 0 && madvise(m->base + offset, (size_t)length, MADV_REMOVE) != 0) return throw_errno(env, "madvise(MADV_REMOVE)", errno);
  return undefined_value(env);
}

/* residentPages(handle, offset, length) -> number of pages backed by memory (mincore) */
napi_value js_resident(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int64_t offset, length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  mapping_t *m = argc < 3 ? NULL : get_mapping(env, argv[0]);
  if (!m || arg_int(env, argv[1], &offset) != 0 || arg_int(env, argv[2], &length) != 0) return NULL;
  if (!in_bounds(env, m, offset, length)) return NULL;
  long page = sysconf(_SC_PAGESIZE);
  uint64_t start = (uint64_t)offset & ~(uint64_t)(page - 1);
  uint64_t end = (uint64_t)(offset + length);
  size_t pages = (size_t)((end - start + (uint64_t)page - 1) / (uint64_t)page);
  if (pages == 0) return make_int(env, 0);
  unsigned char *vec = malloc(pages);
  if (!vec) return throw_errno(env, "malloc", ENOMEM);
  if (mincore(m->base + start, (size_t)(end - start), vec) != 0) {
    int err = errno;
    free(vec);
    return throw_errno(env, "mincore", err);
  }
  int64_t resident = 0;
  for (size_t i = 0; i < pages; i++) resident += vec[i] & 1;
  free(vec);
  return make_int(env, resident);
}

/* eventfd() -> fd (non-blocking) */
