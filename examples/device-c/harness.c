/*
 * vmemct-harness/1 over stdin/stdout for the example virtio-mem device (device target).
 * One JSON object per line in, one per line out. json_reader.c parses what the protocol
 * sends: flat objects of strings, numbers, bools, arrays and the nested set-up object.
 */
#define _POSIX_C_SOURCE 200809L
#include "json_reader.h"
#include "virtio_mem_dev.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (1u << 20)

/* ---- buffers and output ------------------------------------------------------------------- */

struct buf {
    uint8_t *data;
    size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t cap)
{
    if (cap <= b->cap)
        return 0;
    size_t c = b->cap ? b->cap : 256;
    while (c < cap)
        c *= 2;
    uint8_t *grown = realloc(b->data, c);
    if (!grown)
        return -1;
    b->data = grown;
    b->cap = c;
    return 0;
}

/* Appends the bytes of a hex string node to b; -1 when it is not hex. */
static int append_hex(struct buf *b, int n)
{
    if (n < 0 || json_pool[n].type != J_STR || json_pool[n].len % 2)
        return -1;
    size_t bytes = json_pool[n].len / 2;
    if (buf_reserve(b, b->len + bytes) != 0)
        return -1;
    for (size_t i = 0; i < bytes; i++) {
        int hi = json_hexval(json_pool[n].str[2 * i]), lo = json_hexval(json_pool[n].str[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        b->data[b->len++] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static struct buf out;

static void out_printf(const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf((char *)out.data + out.len, out.cap - out.len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < out.cap - out.len) {
            out.len += (size_t)n;
            return;
        }
        if (buf_reserve(&out, out.len + (size_t)n + 1) != 0)
            return;
    }
}

static void out_hex(const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    if (buf_reserve(&out, out.len + 2 * len + 1) != 0)
        return;
    for (size_t i = 0; i < len; i++) {
        out.data[out.len++] = (uint8_t)digits[p[i] >> 4];
        out.data[out.len++] = (uint8_t)digits[p[i] & 15];
    }
}

static void out_flush(void)
{
    out_printf("\n");
    fwrite(out.data, 1, out.len, stdout);
    fflush(stdout);
    out.len = 0;
}

/* ---- the protocol ------------------------------------------------------------------------- */

static struct vmem_dev dev;
static int dev_open;
static char *line;
static size_t line_cap;
static struct buf readable, writable, memory;

static const char HELLO[] =
    "{\"hello\":\"vmemct-harness/1\",\"implementation\":\"vmemct-example-device-c\",\"version\":\"1.0.0\","
    "\"targets\":{\"device\":[\"host-resize\",\"device-reset\",\"system-reset\",\"raw-descriptor-layout\","
    "\"read-raw-config\",\"feature-negotiation\",\"initial-plugged\",\"memory-access\",\"inject-busy\","
    "\"config-generation\"]}}";

static void reply_error(uint64_t id, const char *text)
{
    out.len = 0;
    out_printf("{\"id\":%llu,\"ok\":false,\"error\":\"%s\"}", (unsigned long long)id, text);
    out_flush();
}

static int reply_ok(uint64_t id)
{
    out.len = 0;
    out_printf("{\"id\":%llu,\"ok\":true", (unsigned long long)id);
    return 0;
}

static void reply_end(void)
{
    out_printf("}");
    out_flush();
}

static ssize_t read_line(void)
{
    ssize_t n;
    do {
        n = getline(&line, &line_cap, stdin);
        if (n < 0)
            return -1;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
    } while (n == 0);
    return n;
}

static const char *op_open_device(uint64_t id, int cmd)
{
    int s = json_member(cmd, "setup");
    if (s < 0 || json_pool[s].type != J_OBJ)
        return "open_device: setup is missing or not an object";
    struct vmem_setup setup;
    memset(&setup, 0, sizeof setup);
    uint64_t node_id = 0;
    if (json_get_u64(json_member(s, "block_size"), &setup.block_size) || json_get_u64(json_member(s, "region_size"), &setup.region_size) ||
        json_get_u64(json_member(s, "addr"), &setup.addr) || json_get_u64(json_member(s, "requested_size"), &setup.requested_size))
        return "open_device: block_size, region_size, addr and requested_size must be 64-bit strings";
    if (json_member(s, "node_id") >= 0 && (json_get_uint(json_member(s, "node_id"), &node_id) || node_id > 0xffff))
        return "open_device: node_id must be a number 0..65535";
    setup.node_id = (uint16_t)node_id;
    if (json_member(s, "features") >= 0) {
        if (json_get_u64(json_member(s, "features"), &setup.features))
            return "open_device: features must be a 64-bit string";
        setup.has_features = 1;
    }
    if (json_member(s, "usable_region_size") >= 0) {
        if (json_get_u64(json_member(s, "usable_region_size"), &setup.usable_region_size))
            return "open_device: usable_region_size must be a 64-bit string";
        setup.has_usable = 1;
    }
    int plugged = json_member(s, "plugged");
    if (plugged >= 0 && json_pool[plugged].type != J_ARR)
        return "open_device: plugged must be an array";
    if (dev_open) {
        vmem_close(&dev);
        dev_open = 0;
    }
    const char *why = NULL;
    if (vmem_open(&dev, &setup, &why) != 0) {
        out.len = 0;
        out_printf("{\"id\":%llu,\"ok\":false,\"unsupported\":\"%s\"}", (unsigned long long)id, why);
        out_flush();
        return NULL;
    }
    dev_open = 1;
    for (int r = plugged >= 0 ? json_pool[plugged].first : -1; r >= 0; r = json_pool[r].next) {
        uint64_t first, count;
        if (json_get_uint(json_member(r, "first"), &first) || json_get_uint(json_member(r, "count"), &count) || count == 0)
            return "open_device: each plugged run needs numbers first and count >= 1";
        if (vmem_plug_initial(&dev, first, count, &why) != 0) {
            vmem_close(&dev);
            dev_open = 0;
            out.len = 0;
            out_printf("{\"id\":%llu,\"ok\":false,\"unsupported\":\"%s\"}", (unsigned long long)id, why);
            out_flush();
            return NULL;
        }
    }
    reply_ok(id);
    reply_end();
    return NULL;
}

/* The driver's side of the virtio handshake; the suite chooses the accepted features. */
static const char *op_initialise(uint64_t id)
{
    vmem_write_status(&dev, 0);
    vmem_write_status(&dev, VIRTIO_STATUS_ACKNOWLEDGE);
    vmem_write_status(&dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t offered = vmem_device_features(&dev), accepted = 0;
    printf("{\"call\":\"accept\",\"offered\":\"0x%llx\"}\n", (unsigned long long)offered);
    fflush(stdout);
    ssize_t n = read_line();
    if (n < 0)
        exit(0);
    int answer = json_parse_line(line, (size_t)n);
    if (!json_str_is(json_member(answer, "answer"), "accept") || json_get_u64(json_member(answer, "features"), &accepted))
        return "initialise: expected {\"answer\":\"accept\",\"features\":\"0x...\"}";
    vmem_write_driver_features(&dev, accepted);
    uint8_t status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
    vmem_write_status(&dev, status | VIRTIO_STATUS_FEATURES_OK);
    int features_ok = (vmem_read_status(&dev) & VIRTIO_STATUS_FEATURES_OK) != 0;
    if (features_ok)
        vmem_write_status(&dev, status | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    reply_ok(id);
    out_printf(",\"offered\":\"0x%llx\",\"accepted\":\"0x%llx\",\"features_ok\":%s,\"status\":%u",
               (unsigned long long)offered, (unsigned long long)accepted, features_ok ? "true" : "false",
               vmem_read_status(&dev));
    reply_end();
    return NULL;
}

static const char *op_submit(uint64_t id, int cmd)
{
    int r = json_member(cmd, "readable"), w = json_member(cmd, "writable");
    if (r < 0 || w < 0 || json_pool[r].type != J_ARR || json_pool[w].type != J_ARR)
        return "submit: readable and writable must be arrays of hex strings";
    readable.len = writable.len = 0;
    for (int c = json_pool[r].first; c >= 0; c = json_pool[c].next)
        if (append_hex(&readable, c))
            return "submit: a readable buffer is not a hex string";
    for (int c = json_pool[w].first; c >= 0; c = json_pool[c].next)
        if (append_hex(&writable, c))
            return "submit: a writable buffer is not a hex string";
    uint8_t resp[VMEM_RESPONSE_SIZE];
    size_t used = vmem_handle_request(&dev, readable.data, readable.len, writable.len, resp);
    if (used > writable.len)
        used = writable.len;
    memcpy(writable.data, resp, used);
    reply_ok(id);
    out_printf(",\"used\":true,\"length\":%zu,\"written\":\"", used);
    out_hex(writable.data, used);
    out_printf("\"");
    reply_end();
    return NULL;
}

static const char *op_memory(uint64_t id, int cmd, int write)
{
    uint64_t addr, length = 0;
    const char *why = NULL;
    if (json_get_u64(json_member(cmd, "addr"), &addr))
        return "memory access: addr must be a 64-bit string";
    memory.len = 0;
    if (write) {
        if (append_hex(&memory, json_member(cmd, "data")))
            return "write_memory: data must be a hex string";
        length = memory.len;
    } else if (json_get_uint(json_member(cmd, "length"), &length) || length > MAX_LINE / 2 - 64) {
        return "read_memory: length must be a number below 512 KiB";
    } else if (buf_reserve(&memory, (size_t)length + 1)) {
        return "read_memory: out of memory";
    }
    int rc = write ? vmem_write_memory(&dev, addr, length, memory.data, &why)
                   : vmem_read_memory(&dev, addr, length, memory.data, &why);
    reply_ok(id);
    if (rc != 0) {
        out_printf(",\"refused\":\"%s\"", why);
    } else if (!write) {
        out_printf(",\"data\":\"");
        out_hex(memory.data, (size_t)length);
        out_printf("\"");
    }
    reply_end();
    return NULL;
}

/* Runs one command; returns an error text for an ok:false reply, or NULL once replied. */
static const char *dispatch(uint64_t id, int cmd, int *quit)
{
    int opn = json_member(cmd, "op");
    if (opn < 0 || json_pool[opn].type != J_STR)
        return "op is missing or not a string";
    if (json_str_is(opn, "shutdown")) {
        *quit = 1;
        reply_ok(id);
        reply_end();
        return NULL;
    }
    if (json_str_is(opn, "open_device"))
        return op_open_device(id, cmd);
    if (!dev_open)
        return "no device is open (open_device first)";
    uint64_t value;
    const char *why = NULL;
    if (json_str_is(opn, "submit"))
        return op_submit(id, cmd);
    if (json_str_is(opn, "initialise"))
        return op_initialise(id);
    reply_ok(id);
    if (json_str_is(opn, "read_config")) {
        uint8_t config[VMEM_CONFIG_SIZE];
        vmem_read_config(&dev, config);
        out_printf(",\"config\":\"");
        out_hex(config, sizeof config);
        out_printf("\"");
    } else if (json_str_is(opn, "read_status")) {
        out_printf(",\"status\":%u", vmem_read_status(&dev));
    } else if (json_str_is(opn, "notification_count")) {
        out_printf(",\"count\":%u", (unsigned)dev.notifications);
    } else if (json_str_is(opn, "read_config_generation")) {
        out_printf(",\"generation\":%u", (unsigned)dev.generation);
    } else if (json_str_is(opn, "close_device")) {
        vmem_close(&dev);
        dev_open = 0;
    } else if (json_str_is(opn, "resize")) {
        if (json_get_u64(json_member(cmd, "requested_size"), &value))
            return "resize: requested_size must be a 64-bit string";
        if (vmem_resize(&dev, value, &why) == 0)
            out_printf(",\"applied\":true");
        else
            out_printf(",\"applied\":false,\"reason\":\"%s\"", why);
    } else if (json_str_is(opn, "device_reset")) {
        vmem_write_status(&dev, 0);
    } else if (json_str_is(opn, "system_reset")) {
        vmem_system_reset(&dev);
    } else if (json_str_is(opn, "inject_busy")) {
        if (json_get_uint(json_member(cmd, "count"), &value) || value > UINT32_MAX)
            return "inject_busy: count must be a number";
        vmem_inject_busy(&dev, (uint32_t)value);
    } else if (json_str_is(opn, "read_memory") || json_str_is(opn, "write_memory")) {
        return op_memory(id, cmd, json_str_is(opn, "write_memory"));
    } else {
        return "unknown op";
    }
    reply_end();
    return NULL;
}

int main(void)
{
    if (buf_reserve(&out, 4096) != 0)
        return 1;
    puts(HELLO);
    fflush(stdout);
    for (int quit = 0; !quit;) {
        ssize_t n = read_line();
        if (n < 0)
            break;
        uint64_t id = 0;
        int cmd = json_parse_line(line, (size_t)n);
        if (cmd < 0 || json_get_uint(json_member(cmd, "id"), &id) != 0) {
            fprintf(stderr, "vmemct-example-device: not a command: %.80s\n", line);
            reply_error(id, "malformed command: not a JSON object with a numeric id");
            continue;
        }
        const char *error = dispatch(id, cmd, &quit);
        if (error)
            reply_error(id, error);
    }
    if (dev_open)
        vmem_close(&dev);
    return 0;
}
