/*
 * Shared by the vhostfd sources: the Node-API helpers every call uses and the mapping calls that
 * live in mappings.c.
 */
#ifndef VHOSTFD_H
#define VHOSTFD_H

#include <node_api.h>
#include <stdint.h>

#define CHECK(call)                                                                 \
  do {                                                                              \
    if ((call) != napi_ok) {                                                        \
      napi_throw_error(env, "EINTERNAL", "vhostfd: Node-API call failed: " #call); \
      return NULL;                                                                  \
    }                                                                               \
  } while (0)

/* Throws a JavaScript error named after errno `err`; returns NULL for the caller to return. */
napi_value throw_errno(napi_env env, const char *what, int err);
/* A JavaScript number from a 64-bit integer (NULL on failure). */
napi_value make_int(napi_env env, int64_t v);
/* The JavaScript undefined value. */
napi_value undefined_value(napi_env env);
/* Reads a number or bigint argument that fits in 64 signed bits; -1 (with a pending exception) otherwise. */
int arg_int(napi_env env, napi_value v, int64_t *out);

/* mappings.c: shared mappings reached through handles, and the SIGBUS guard of their copies. */
napi_value js_map(napi_env env, napi_callback_info info);
napi_value js_unmap(napi_env env, napi_callback_info info);
napi_value js_address(napi_env env, napi_callback_info info);
napi_value js_read(napi_env env, napi_callback_info info);
napi_value js_write(napi_env env, napi_callback_info info);
napi_value js_discard(napi_env env, napi_callback_info info);
napi_value js_resident(napi_env env, napi_callback_info info);
void install_bus_handler(void);

#endif
