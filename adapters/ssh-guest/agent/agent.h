/*
 * Shared declarations of vmemct-agent's two files: vmemct-agent.c (frames, operations, main; the
 * frame layout is described there) and agent-places.c (the PCI function, the DMA window and the
 * device region: where an address leads).
 */
#ifndef VMEMCT_AGENT_H
#define VMEMCT_AGENT_H
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the agent copies little-endian fields directly; build it for a little-endian guest"
#endif

#define PROTOCOL_VERSION 1u
#define REQUEST_MAGIC 0x51474d56u
#define REPLY_MAGIC 0x52474d56u
#define MAX_FRAME (16u << 20)
#define MAX_OPERATIONS 65536u
#define MAX_MESSAGE 1024u
#define MAX_WAIT_US 1000000u
#define ANY_FUNCTION 0xffffffffu
#define VENDOR_VIRTIO 0x1af4u
#define DEVICE_VIRTIO_MEM 0x1058u
#define DMA_BYTES (2u << 20)
#define FAKE_DMA_BASE 0x40000000ull
#define PAGE 4096ull
#define BARS 6

enum { ST_OK = 0, ST_REFUSED = 1, ST_MALFORMED = 2 };
enum {
  E_MALFORMED = 1, E_VERSION, E_NO_DEVICE, E_SEVERAL, E_NOT_OPEN, E_ACCESS, E_IO, E_LOCKDOWN,
  E_DEVMEM, E_NO_HUGEPAGE, E_NOT_CONTIGUOUS
};
enum {
  OP_CONFIG_READ = 0x01, OP_CONFIG_WRITE, OP_READ, OP_WRITE, OP_READ_BYTES, OP_WRITE_BYTES,
  OP_ZERO_BYTES, OP_WAIT_CHANGE, OP_HELLO = 0x10, OP_OPEN, OP_SET_REGION, OP_DMA_WINDOW
};

/* A guest-physical range and where the agent has it mapped (`at` NULL: not mapped). */
struct mapping { uint64_t base, size; volatile uint8_t *at; };

/* An operation after structural checks. */
struct op {
  uint8_t code, width;
  uint16_t offset;
  uint32_t length, value32, bdf;
  uint64_t addr, value;
  const uint8_t *bytes;
};

/* Test mode (--root): sysfs, /dev/mem and /proc/sys under `root`, a made-up DMA window. */
extern const char *root;
extern int test_mode;

/* Records why the current operation is refused (code and message); returns -1. */
int refuse(uint32_t code, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Appends a little-endian answer field to the reply. */
void put(uint64_t v, unsigned width);
/* Appends raw bytes to the reply (a read-bytes answer); returns where they go. */
uint8_t *put_bytes(size_t length);
/* A little-endian field of `width` bytes at `p`. */
uint64_t get(const uint8_t *p, unsigned width);
int write_all(int fd, const void *data, size_t size);

/* agent-places.c */
int open_function(uint32_t wanted);
int dma_window(void);
int set_region(uint64_t base, uint64_t length);
int config_access(const struct op *o, int write);
volatile uint8_t *locate(uint64_t addr, uint64_t length, int scalar);

#endif
