/*
 * vmemct-agent: the in-guest half of vmemct's PCI function bus. It gives the host the primitive
 * operations of a bus, nothing virtio-specific: the virtio-mem PCI function's configuration space
 * (sysfs `config`), MMIO in its memory BARs (sysfs `resourceN` mappings, after unbinding the
 * kernel's driver), a DMA window of locked, physically contiguous RAM (one 2 MiB hugetlb page,
 * its address from /proc/self/pagemap), and guest-physical memory of the virtio-mem device region
 * (a /dev/mem mapping, where the kernel allows it).
 *
 * It reads binary frames on stdin and writes one reply frame per request on stdout. It never runs
 * a shell or another program, and checks every length, offset and address before use.
 *
 * Usage: vmemct-agent [--root DIR]
 *   --root DIR  test mode: sysfs, /dev/mem and /proc/sys are looked up under DIR, and the DMA
 *               window is plain memory at a made-up address (FAKE_DMA_BASE); no pagemap.
 *
 * Frame layout (all fields little-endian; the host declares the same table in
 * adapters/ssh-guest/src/agent-protocol.ts):
 *
 * Request: header (16 bytes), then `count` operations back to back.
 *   @0 u32 length    whole frame in bytes, header included (16 .. MAX_FRAME)
 *   @4 u32 magic     REQUEST_MAGIC ("VMGQ")
 *   @8 u32 sequence  echoed in the reply
 *   @12 u32 count    number of operations (.. MAX_OPERATIONS)
 * Operation: u8 code at @0, then fixed fields; bytes no field covers must be zero.
 *   0x01 config-read   4 B: width u8 @1 (1|2|4), offset u16 @2         -> value u32
 *   0x02 config-write  8 B: width u8 @1, offset u16 @2, value u32 @4   -> nothing
 *   0x03 read         16 B: width u8 @1 (1|2|4|8), addr u64 @8         -> value u64
 *   0x04 write        24 B: width u8 @1, addr u64 @8, value u64 @16    -> nothing
 *   0x05 read-bytes   16 B: length u32 @4, addr u64 @8                  -> `length` bytes
 *   0x06 write-bytes  16 B + length: length u32 @4, addr u64 @8, bytes -> nothing
 *   0x07 zero-bytes   16 B: length u32 @4, addr u64 @8                  -> nothing
 *   0x08 wait-change  24 B: width u8 @1, timeout_us u32 @4, addr u64 @8, value u64 @16
 *                     (reads until the value differs or the time is up) -> value u64 (last read)
 *   0x10 hello         8 B: version u32 @4                              -> version u32, max_frame u32
 *   0x11 open          8 B: bdf u32 @4 (0xffffffff: the only virtio-mem function)
 *                     -> bdf u32, vendor u16, device u16, memory_bars u32 (bit i: BAR i mapped),
 *                        unbound u32 (1: a driver was unbound), then 6 x (base u64, size u64)
 *   0x12 set-region   24 B: base u64 @8, length u64 @16 (0: none)      -> nothing
 *   0x13 dma-window    8 B: nothing                                    -> base u64, length u64
 * Reply: header (20 bytes), the answers of the first `done` operations in order, then, unless
 * status is 0, an error trailer: code u32, message_length u32, message (ASCII, .. 1024 B).
 *   @0 u32 length  @4 u32 magic REPLY_MAGIC ("VMGR")  @8 u32 sequence  @12 u32 status  @16 u32 done
 *   status 0: all performed; 1: operation `done` was refused (those before it were performed,
 *   none after); 2: malformed frame (nothing performed; the agent then exits with status 3).
 * Error codes: 1 malformed, 2 version, 3 no-device, 4 several-devices, 5 not-open,
 *   6 refused-access, 7 io, 8 lockdown, 9 devmem-refused, 10 no-hugepage, 11 not-contiguous.
 */
#include "agent.h"

/* One operation's fixed part: its size, answer size, and the fields (offset, width) it uses. */
struct layout {
  uint8_t code, size, answer, nfields;
  struct { uint8_t at, width; } field[5];
};
static const struct layout LAYOUTS[] = {
  {OP_CONFIG_READ, 4, 4, 3, {{0, 1}, {1, 1}, {2, 2}}},
  {OP_CONFIG_WRITE, 8, 0, 4, {{0, 1}, {1, 1}, {2, 2}, {4, 4}}},
  {OP_READ, 16, 8, 3, {{0, 1}, {1, 1}, {8, 8}}},
  {OP_WRITE, 24, 0, 4, {{0, 1}, {1, 1}, {8, 8}, {16, 8}}},
  {OP_READ_BYTES, 16, 0, 3, {{0, 1}, {4, 4}, {8, 8}}},
  {OP_WRITE_BYTES, 16, 0, 3, {{0, 1}, {4, 4}, {8, 8}}},
  {OP_ZERO_BYTES, 16, 0, 3, {{0, 1}, {4, 4}, {8, 8}}},
  {OP_WAIT_CHANGE, 24, 8, 5, {{0, 1}, {1, 1}, {4, 4}, {8, 8}, {16, 8}}},
  {OP_HELLO, 8, 8, 2, {{0, 1}, {4, 4}}},
  {OP_OPEN, 8, 112, 2, {{0, 1}, {4, 4}}},
  {OP_SET_REGION, 24, 0, 3, {{0, 1}, {8, 8}, {16, 8}}},
  {OP_DMA_WINDOW, 8, 16, 1, {{0, 1}}},
};

const char *root = "";
int test_mode;

static uint8_t *reply;
static size_t reply_used, reply_cap;
static uint32_t error_code;
static char error_text[MAX_MESSAGE];

int refuse(uint32_t code, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(error_text, sizeof error_text, format, args);
  va_end(args);
  error_code = code;
  return -1;
}

uint64_t get(const uint8_t *p, unsigned width) {
  uint64_t v = 0;
  memcpy(&v, p, width);
  return v;
}

void put(uint64_t v, unsigned width) {
  memcpy(reply + reply_used, &v, width);
  reply_used += width;
}


uint8_t *put_bytes(size_t length) {
  uint8_t *at = reply + reply_used;
  reply_used += length;
  return at;
}

int write_all(int fd, const void *data, size_t size) {
  const uint8_t *p = data;
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    size -= (size_t)n;
  }
  return 0;
}

/* Reads exactly `size` bytes; returns the count read (short only at end of input). */
static size_t read_all(int fd, void *data, size_t size) {
  uint8_t *p = data;
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, p + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  return got;
}

/* A small sysfs text file into `out` (NUL-terminated); -1 when it cannot be read. */

static uint64_t load(volatile uint8_t *p, unsigned width) {
  switch (width) {
  case 1: return *p;
  case 2: return *(volatile uint16_t *)p;
  case 4: return *(volatile uint32_t *)p;
  default: return *(volatile uint64_t *)p;
  }
}

static void store(volatile uint8_t *p, unsigned width, uint64_t v) {
  switch (width) {
  case 1: *p = (uint8_t)v; break;
  case 2: *(volatile uint16_t *)p = (uint16_t)v; break;
  case 4: *(volatile uint32_t *)p = (uint32_t)v; break;
  default: *(volatile uint64_t *)p = v; break;
  }
}


static uint64_t now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static int perform(const struct op *o) {
  volatile uint8_t *p;
  switch (o->code) {
  case OP_CONFIG_READ: return config_access(o, 0);
  case OP_CONFIG_WRITE: return config_access(o, 1);
  case OP_READ:
  case OP_WRITE:
  case OP_WAIT_CHANGE:
    if (o->addr % o->width) return refuse(E_ACCESS, "%#llx is not aligned to %u", (unsigned long long)o->addr, o->width);
    if (!(p = locate(o->addr, o->width, 1))) return -1;
    if (o->code == OP_WRITE) {
      store(p, o->width, o->value);
    } else if (o->code == OP_READ) {
      put(load(p, o->width), 8);
    } else {
      uint64_t until = now_us() + o->value32, v;
      while ((v = load(p, o->width)) == o->value && now_us() < until) sched_yield();
      put(v, 8);
    }
    return 0;
  case OP_READ_BYTES:
  case OP_WRITE_BYTES:
  case OP_ZERO_BYTES:
    if (o->length == 0) return 0;
    if (!(p = locate(o->addr, o->length, 0))) return -1;
    if (o->code == OP_READ_BYTES) memcpy(put_bytes(o->length), (const void *)p, o->length);
    else if (o->code == OP_WRITE_BYTES) memcpy((void *)p, o->bytes, o->length);
    else memset((void *)p, 0, o->length);
    return 0;
  case OP_HELLO:
    if (o->value32 != PROTOCOL_VERSION)
      return refuse(E_VERSION, "the host speaks agent protocol %u, this agent %u: rebuild the guest", o->value32,
                    PROTOCOL_VERSION);
    put(PROTOCOL_VERSION, 4);
    put(MAX_FRAME, 4);
    return 0;
  case OP_OPEN: return open_function(o->bdf);
  case OP_SET_REGION: return set_region(o->addr, o->value);
  default: return dma_window();
  }
}

/* --- frames ------------------------------------------------------------------------------- */

static void send_reply(uint32_t sequence, uint32_t status, uint32_t done) {
  if (status != ST_OK) {
    uint32_t n = (uint32_t)strlen(error_text);
    put(error_code, 4);
    put(n, 4);
    memcpy(reply + reply_used, error_text, n);
    reply_used += n;
  }
  uint32_t header[5] = {(uint32_t)reply_used, REPLY_MAGIC, sequence, status, done};
  memcpy(reply, header, sizeof header);
  if (write_all(1, reply, reply_used) < 0) exit(4);
}

static void malformed(uint32_t sequence, const char *format, ...) __attribute__((format(printf, 2, 3), noreturn));
static void malformed(uint32_t sequence, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(error_text, sizeof error_text, format, args);
  va_end(args);
  error_code = E_MALFORMED;
  reply_used = 20;
  send_reply(sequence, ST_MALFORMED, 0);
  exit(3);
}

/* Structural checks of one operation at `p` (`left` bytes remain); fills `o`, returns its size. */
static size_t decode(uint32_t sequence, uint32_t index, const uint8_t *p, size_t left, struct op *o, size_t *answer) {
  const struct layout *l = NULL;
  for (size_t i = 0; i < sizeof LAYOUTS / sizeof LAYOUTS[0]; i++)
    if (LAYOUTS[i].code == p[0]) l = &LAYOUTS[i];
  if (!l) malformed(sequence, "operation %u: unknown code %#x", index, p[0]);
  if (left < l->size) malformed(sequence, "operation %u (code %#x) is cut short", index, p[0]);
  uint8_t used[24] = {0};
  for (unsigned f = 0; f < l->nfields; f++) memset(used + l->field[f].at, 1, l->field[f].width);
  for (unsigned b = 0; b < l->size; b++)
    if (!used[b] && p[b]) malformed(sequence, "operation %u: reserved byte %u is not zero", index, b);
  memset(o, 0, sizeof *o);
  o->code = p[0];
  o->width = p[1];
  o->offset = (uint16_t)get(p + 2, 2);
  if (l->size >= 8) o->length = o->value32 = o->bdf = (uint32_t)get(p + 4, 4);
  if (l->size >= 16) o->addr = get(p + 8, 8);
  if (l->size >= 24) o->value = get(p + 16, 8);
  size_t size = l->size;
  *answer = l->answer;
  switch (o->code) {
  case OP_CONFIG_READ:
  case OP_CONFIG_WRITE:
    if (o->width != 1 && o->width != 2 && o->width != 4)
      malformed(sequence, "operation %u: configuration width %u is not 1, 2 or 4", index, o->width);
    break;
  case OP_READ:
  case OP_WRITE:
  case OP_WAIT_CHANGE:
    if (o->width != 1 && o->width != 2 && o->width != 4 && o->width != 8)
      malformed(sequence, "operation %u: width %u is not 1, 2, 4 or 8", index, o->width);
    if (o->code == OP_WAIT_CHANGE && o->value32 > MAX_WAIT_US)
      malformed(sequence, "operation %u: wait of %u us is over %u", index, o->value32, MAX_WAIT_US);
    break;
  case OP_READ_BYTES:
  case OP_WRITE_BYTES:
  case OP_ZERO_BYTES:
    if (o->length > MAX_FRAME) malformed(sequence, "operation %u: length %u is over %u", index, o->length, MAX_FRAME);
    if (o->code == OP_READ_BYTES) *answer = o->length;
    if (o->code == OP_WRITE_BYTES) {
      if (left - size < o->length) malformed(sequence, "operation %u: %u bytes announced, fewer sent", index, o->length);
      o->bytes = p + size;
      size += o->length;
    }
    break;
  default: break;
  }
  return size;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--root") == 0 && i + 1 < argc && argv[i + 1][0] == '/') {
      root = argv[++i];
      test_mode = 1;
    } else {
      fprintf(stderr, "usage: vmemct-agent [--root DIR]\n");
      return 2;
    }
  }
  static uint8_t frame[MAX_FRAME];
  static struct op ops[MAX_OPERATIONS];
  reply_cap = (size_t)MAX_FRAME + 20 + 8 + MAX_MESSAGE;
  reply = malloc(reply_cap);
  if (!reply) return 5;
  for (;;) {
    size_t got = read_all(0, frame, 16);
    if (got == 0) return 0;
    uint32_t length = (uint32_t)get(frame, 4), sequence = (uint32_t)get(frame + 8, 4);
    uint32_t count = (uint32_t)get(frame + 12, 4);
    if (got < 16) malformed(0, "input ended inside a frame header");
    if (get(frame + 4, 4) != REQUEST_MAGIC) malformed(0, "bad magic %#llx", (unsigned long long)get(frame + 4, 4));
    if (length < 16 || length > MAX_FRAME) malformed(sequence, "frame length %u is not within 16..%u", length, MAX_FRAME);
    if (count > MAX_OPERATIONS) malformed(sequence, "%u operations are over %u", count, MAX_OPERATIONS);
    if (read_all(0, frame + 16, length - 16) != length - 16) malformed(sequence, "input ended inside a frame");
    size_t at = 16, answers = 20;
    for (uint32_t i = 0; i < count; i++) {
      size_t answer;
      if (at >= length) malformed(sequence, "frame ends after %u of %u operations", i, count);
      at += decode(sequence, i, frame + at, length - at, &ops[i], &answer);
      answers += answer;
      if (answers > MAX_FRAME) malformed(sequence, "the answers would exceed %u bytes", MAX_FRAME);
    }
    if (at != length) malformed(sequence, "%zu bytes after the last operation", (size_t)length - at);
    reply_used = 20;
    uint32_t done = 0;
    while (done < count && perform(&ops[done]) == 0) done++;
    send_reply(sequence, done == count ? ST_OK : ST_REFUSED, done);
  }
}
