/*
 * virtio-mem device logic: configuration, block bitmap, requests, host resize, resets, status
 * and feature negotiation, and a sparse store for the memory of the device region.
 */
#include "virtio_mem_dev.h"

#include <stdlib.h>
#include <string.h>

/*
 * DELIBERATE DEVIATION (kept on purpose, so a conformance run shows the gate catching it):
 * an UNPLUG whose range is only partly plugged is answered ACK and unplugs the plugged blocks
 * in it, where the specification requires VIRTIO_MEM_RESP_ERROR when any block in the range is
 * already unplugged. Real VMMs have shipped exactly this shortcut. Build with
 * -DVMEM_DEVIATION_UNPLUG_PARTLY_PLUGGED_ACK=0 (or set it to 0 here) to conform.
 */
#ifndef VMEM_DEVIATION_UNPLUG_PARTLY_PLUGGED_ACK
#define VMEM_DEVIATION_UNPLUG_PARTLY_PLUGGED_ACK 1
#endif

/* Margin the usable region keeps beyond requested_size (the rest of the region is unusable). */
#define VMEM_USABLE_MARGIN (UINT64_C(256) << 20)

#define PAGE_SHIFT 12
#define PAGE_SIZE (UINT64_C(1) << PAGE_SHIFT)

struct vmem_page {
    struct vmem_page *next;
    uint64_t index; /* page number from the region start */
    uint8_t data[PAGE_SIZE];
};

static const uint64_t SUPPORTED_FEATURES = (UINT64_C(1) << VIRTIO_F_VERSION_1) |
                                           (UINT64_C(1) << VIRTIO_MEM_F_ACPI_PXM) |
                                           (UINT64_C(1) << VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE) |
                                           (UINT64_C(1) << VIRTIO_MEM_F_PERSISTENT_SUSPEND);
static const uint64_t DEFAULT_FEATURES =
    (UINT64_C(1) << VIRTIO_F_VERSION_1) | (UINT64_C(1) << VIRTIO_MEM_F_ACPI_PXM);

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* ---- block bitmap ------------------------------------------------------------------------- */

static uint64_t range_mask(uint64_t lo, uint64_t hi) /* bits [lo, hi) of one word, hi <= 64 */
{
    uint64_t upper = hi == 64 ? ~UINT64_C(0) : (UINT64_C(1) << hi) - 1;
    return upper & ~((UINT64_C(1) << lo) - 1);
}

/* Number of plugged blocks in [first, first + count). */
static uint64_t count_plugged(const struct vmem_dev *dev, uint64_t first, uint64_t count)
{
    uint64_t n = 0, b = first, end = first + count;
    while (b < end) {
        uint64_t w = b / 64, lo = b % 64, hi = (end - w * 64) < 64 ? end - w * 64 : 64;
        n += (uint64_t)__builtin_popcountll(dev->bitmap[w] & range_mask(lo, hi));
        b = w * 64 + hi;
    }
    return n;
}

/* Sets (plugged != 0) or clears the bits of [first, first + count). */
static void set_blocks(struct vmem_dev *dev, uint64_t first, uint64_t count, int plugged)
{
    uint64_t b = first, end = first + count;
    while (b < end) {
        uint64_t w = b / 64, lo = b % 64, hi = (end - w * 64) < 64 ? end - w * 64 : 64;
        if (plugged)
            dev->bitmap[w] |= range_mask(lo, hi);
        else
            dev->bitmap[w] &= ~range_mask(lo, hi);
        b = w * 64 + hi;
    }
}

static int block_plugged(const struct vmem_dev *dev, uint64_t block)
{
    return (int)((dev->bitmap[block / 64] >> (block % 64)) & 1);
}

/* ---- sparse memory store ------------------------------------------------------------------ */

static size_t bucket_of(const struct vmem_dev *dev, uint64_t index)
{
    return (size_t)((index * UINT64_C(0x9e3779b97f4a7c15)) >> 20) & (dev->nb_buckets - 1);
}

static struct vmem_page *find_page(const struct vmem_dev *dev, uint64_t index)
{
    if (!dev->buckets)
        return NULL;
    for (struct vmem_page *p = dev->buckets[bucket_of(dev, index)]; p; p = p->next)
        if (p->index == index)
            return p;
    return NULL;
}

static int grow_buckets(struct vmem_dev *dev)
{
    size_t n = dev->nb_buckets ? dev->nb_buckets * 2 : 256;
    struct vmem_page **fresh = calloc(n, sizeof *fresh);
    if (!fresh)
        return -1;
    struct vmem_page **old = dev->buckets;
    size_t old_n = dev->nb_buckets;
    dev->buckets = fresh;
    dev->nb_buckets = n;
    for (size_t i = 0; i < old_n; i++) {
        for (struct vmem_page *p = old[i], *next; p; p = next) {
            next = p->next;
            size_t b = bucket_of(dev, p->index);
            p->next = fresh[b];
            fresh[b] = p;
        }
    }
    free(old);
    return 0;
}

static struct vmem_page *get_page(struct vmem_dev *dev, uint64_t index)
{
    struct vmem_page *p = find_page(dev, index);
    if (p)
        return p;
    if (dev->nb_pages >= dev->nb_buckets && grow_buckets(dev) != 0)
        return NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->index = index;
    size_t b = bucket_of(dev, index);
    p->next = dev->buckets[b];
    dev->buckets[b] = p;
    dev->nb_pages++;
    return p;
}

/* Drops the stored pages of blocks [first, first + count): unplugged memory has no content. */
static void discard_blocks(struct vmem_dev *dev, uint64_t first, uint64_t count)
{
    if (dev->nb_pages == 0)
        return;
    uint64_t lo = first * dev->block_size / PAGE_SIZE;
    uint64_t hi = (first + count) * dev->block_size / PAGE_SIZE;
    for (size_t i = 0; i < dev->nb_buckets; i++) {
        struct vmem_page **link = &dev->buckets[i];
        while (*link) {
            struct vmem_page *p = *link;
            if (p->index >= lo && p->index < hi) {
                *link = p->next;
                free(p);
                dev->nb_pages--;
            } else {
                link = &p->next;
            }
        }
    }
}

/* ---- configuration ------------------------------------------------------------------------ */

/* The usable region the device wants for a requested_size: requested_size plus a margin. */
static uint64_t usable_for(const struct vmem_dev *dev, uint64_t requested)
{
    uint64_t margin = align_up(VMEM_USABLE_MARGIN, dev->block_size);
    uint64_t want = requested + margin;
    return want > dev->region_size ? dev->region_size : want;
}

static void config_changed(struct vmem_dev *dev, int notify)
{
    dev->generation++;
    if (notify)
        dev->notifications++;
}

int vmem_open(struct vmem_dev *dev, const struct vmem_setup *s, const char **why)
{
    memset(dev, 0, sizeof *dev);
    uint64_t bs = s->block_size;
    if (bs == 0 || (bs & (bs - 1)) != 0)
        return *why = "block_size is not a power of two", -1;
    if (s->addr % bs || s->region_size % bs)
        return *why = "addr and region_size must be multiples of block_size", -1;
    if (s->addr + s->region_size < s->addr)
        return *why = "the region wraps around the address space", -1;
    if (s->region_size / bs > VMEM_MAX_BLOCKS)
        return *why = "the region has more blocks than this device supports (2^28)", -1;
    if (s->requested_size % bs || s->requested_size > s->region_size)
        return *why = "requested_size must be a block multiple within the region", -1;
    if (s->has_features && (s->features & ~SUPPORTED_FEATURES))
        return *why = "the set-up offers a feature bit this device does not implement", -1;
    if (s->has_usable && (s->usable_region_size % bs || s->usable_region_size < s->requested_size ||
                          s->usable_region_size > s->region_size))
        return *why = "usable_region_size must be a block multiple between requested_size and region_size", -1;
    dev->block_size = bs;
    dev->region_size = s->region_size;
    dev->addr = s->addr;
    dev->requested_size = s->requested_size;
    dev->node_id = s->node_id;
    dev->nb_blocks = s->region_size / bs;
    dev->offered = s->has_features ? s->features : DEFAULT_FEATURES;
    dev->usable_region_size = s->has_usable ? s->usable_region_size : usable_for(dev, s->requested_size);
    dev->bitmap = calloc((size_t)(dev->nb_blocks / 64 + 1), sizeof(uint64_t));
    if (!dev->bitmap)
        return *why = "out of memory for the block bitmap", -1;
    return 0;
}

int vmem_plug_initial(struct vmem_dev *dev, uint64_t first, uint64_t count, const char **why)
{
    if (count == 0 || first >= dev->nb_blocks || count > dev->nb_blocks - first)
        return *why = "an initially plugged run lies outside the region", -1;
    if ((first + count) * dev->block_size > dev->usable_region_size)
        return *why = "an initially plugged run lies outside the usable region", -1;
    dev->plugged_size += (count - count_plugged(dev, first, count)) * dev->block_size;
    set_blocks(dev, first, count, 1);
    return 0;
}

void vmem_close(struct vmem_dev *dev)
{
    discard_blocks(dev, 0, dev->nb_blocks);
    free(dev->buckets);
    free(dev->bitmap);
    memset(dev, 0, sizeof *dev);
}

void vmem_read_config(const struct vmem_dev *dev, uint8_t out[VMEM_CONFIG_SIZE])
{
    memset(out, 0, VMEM_CONFIG_SIZE);
    put_le64(out + 0, dev->block_size);
    put_le16(out + 8, dev->node_id);
    put_le64(out + 16, dev->addr);
    put_le64(out + 24, dev->region_size);
    put_le64(out + 32, dev->usable_region_size);
    put_le64(out + 40, dev->plugged_size);
    put_le64(out + 48, dev->requested_size);
}

/* ---- status and features ------------------------------------------------------------------ */

uint8_t vmem_read_status(const struct vmem_dev *dev) { return dev->status; }

void vmem_write_status(struct vmem_dev *dev, uint8_t status)
{
    if (status == 0) { /* device reset: block states and plugged memory stay as they are */
        dev->status = 0;
        dev->driver_features = 0;
        return;
    }
    /* FEATURES_OK sticks only if the driver accepted a subset of what was offered. */
    if ((status & VIRTIO_STATUS_FEATURES_OK) && !(dev->status & VIRTIO_STATUS_FEATURES_OK) &&
        (dev->driver_features & ~dev->offered))
        status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
    dev->status = status;
}

uint64_t vmem_device_features(const struct vmem_dev *dev) { return dev->offered; }

void vmem_write_driver_features(struct vmem_dev *dev, uint64_t features)
{
    if (!(dev->status & VIRTIO_STATUS_FEATURES_OK))
        dev->driver_features = features;
}

static int negotiated(const struct vmem_dev *dev, int bit)
{
    return (dev->status & VIRTIO_STATUS_FEATURES_OK) && ((dev->driver_features >> bit) & 1);
}

/* ---- requests ----------------------------------------------------------------------------- */

static size_t respond(uint8_t resp[VMEM_RESPONSE_SIZE], uint16_t type, uint16_t state)
{
    memset(resp, 0, VMEM_RESPONSE_SIZE);
    put_le16(resp, type);
    put_le16(resp + 8, state);
    return VMEM_RESPONSE_SIZE;
}

/* Checks addr/nb_blocks against alignment and the usable region; sets *first on success. */
static int range_valid(const struct vmem_dev *dev, uint64_t addr, uint16_t nb, uint64_t *first)
{
    if (nb == 0 || addr < dev->addr || (addr - dev->addr) % dev->block_size)
        return 0;
    uint64_t offset = addr - dev->addr;
    if (offset >= dev->usable_region_size)
        return 0;
    uint64_t usable_blocks = dev->usable_region_size / dev->block_size;
    *first = offset / dev->block_size;
    return (uint64_t)nb <= usable_blocks - *first;
}

static void unplug_all(struct vmem_dev *dev)
{
    uint64_t old_usable = dev->usable_region_size;
    discard_blocks(dev, 0, dev->nb_blocks);
    memset(dev->bitmap, 0, (size_t)(dev->nb_blocks / 64 + 1) * sizeof(uint64_t));
    dev->plugged_size = 0;
    /* The usable region may shrink back to requested_size plus the margin (no notification). */
    dev->usable_region_size = usable_for(dev, dev->requested_size);
    (void)old_usable;
}

size_t vmem_handle_request(struct vmem_dev *dev, const uint8_t *req, size_t req_len, size_t writable_len,
                           uint8_t resp[VMEM_RESPONSE_SIZE])
{
    /* No room for a response: the request is not processed; an empty used entry returns it. */
    if (writable_len < VMEM_RESPONSE_SIZE)
        return 0;
    /* A request shorter than 24 bytes is malformed: processed as nothing, answered ERROR. */
    if (req_len < VMEM_REQUEST_SIZE)
        return respond(resp, VIRTIO_MEM_RESP_ERROR, 0);
    uint16_t type = get_le16(req);
    uint64_t addr = get_le64(req + 8);
    uint16_t nb = get_le16(req + 16);
    uint64_t first = 0;

    if (type > VIRTIO_MEM_REQ_STATE)
        return respond(resp, VIRTIO_MEM_RESP_ERROR, 0);
    if (type != VIRTIO_MEM_REQ_STATE && dev->busy_pending) {
        dev->busy_pending--;
        return respond(resp, VIRTIO_MEM_RESP_BUSY, 0);
    }
    switch (type) {
    case VIRTIO_MEM_REQ_PLUG: {
        if (!range_valid(dev, addr, nb, &first))
            return respond(resp, VIRTIO_MEM_RESP_ERROR, 0);
        uint64_t size = (uint64_t)nb * dev->block_size;
        if (dev->plugged_size + size > dev->requested_size)
            return respond(resp, VIRTIO_MEM_RESP_NACK, 0);
        if (count_plugged(dev, first, nb) != 0)
            return respond(resp, VIRTIO_MEM_RESP_ERROR, 0);
        set_blocks(dev, first, nb, 1);
        dev->plugged_size += size;
        config_changed(dev, 0);
        return respond(resp, VIRTIO_MEM_RESP_ACK, 0);
    }
    case VIRTIO_MEM_REQ_UNPLUG: {
        if (!range_valid(dev, addr, nb, &first))
            return respond(resp, VIRTIO_MEM_RESP_ERROR, 0);
        uint64_t plugged = count_plugged(dev, first, nb);
#if VMEM_DEVIATION_UNPLUG_PARTLY_PLUGGED_ACK
        if (plugged == 0)
            return respond(resp, VIRTIO_MEM_RESP_ERROR, 0);
#else
        if (plugged != nb)
            return respond(resp, VIRTIO_MEM_RESP_ERROR, 0);
#endif
        discard_blocks(dev, first, nb);
        set_blocks(dev, first, nb, 0);
        dev->plugged_size -= plugged * dev->block_size;
        config_changed(dev, 0);
        return respond(resp, VIRTIO_MEM_RESP_ACK, 0);
    }
    case VIRTIO_MEM_REQ_UNPLUG_ALL:
        unplug_all(dev);
        config_changed(dev, 0);
        return respond(resp, VIRTIO_MEM_RESP_ACK, 0);
    default: { /* STATE */
        if (!range_valid(dev, addr, nb, &first))
            return respond(resp, VIRTIO_MEM_RESP_ERROR, 0);
        uint64_t plugged = count_plugged(dev, first, nb);
        uint16_t state = plugged == nb  ? VIRTIO_MEM_STATE_PLUGGED
                         : plugged == 0 ? VIRTIO_MEM_STATE_UNPLUGGED
                                        : VIRTIO_MEM_STATE_MIXED;
        return respond(resp, VIRTIO_MEM_RESP_ACK, state);
    }
    }
}

/* ---- host side ---------------------------------------------------------------------------- */

int vmem_resize(struct vmem_dev *dev, uint64_t requested_size, const char **why)
{
    if (requested_size % dev->block_size)
        return *why = "requested_size is not a multiple of block_size", -1;
    if (requested_size > dev->region_size)
        return *why = "requested_size exceeds region_size", -1;
    uint64_t usable = usable_for(dev, requested_size);
    if (usable < dev->usable_region_size) /* the usable region never shrinks on a resize */
        usable = dev->usable_region_size;
    if (requested_size == dev->requested_size && usable == dev->usable_region_size)
        return 0;
    dev->requested_size = requested_size;
    dev->usable_region_size = usable;
    config_changed(dev, 1);
    return 0;
}

void vmem_system_reset(struct vmem_dev *dev)
{
    unplug_all(dev);
    dev->status = 0;
    dev->driver_features = 0;
    dev->busy_pending = 0;
    config_changed(dev, 0);
}

void vmem_inject_busy(struct vmem_dev *dev, uint32_t count) { dev->busy_pending = count; }

/* ---- memory access ------------------------------------------------------------------------ */

/* Whether every block touched by [addr, addr + len) may be accessed (write != 0: written). */
static int access_allowed(const struct vmem_dev *dev, uint64_t addr, uint64_t len, int write, const char **why)
{
    if (len == 0)
        return 1;
    if (addr < dev->addr || addr - dev->addr >= dev->region_size || len > dev->region_size - (addr - dev->addr))
        return *why = "the range is not inside the device region", 0;
    uint64_t offset = addr - dev->addr;
    uint64_t first = offset / dev->block_size, last = (offset + len - 1) / dev->block_size;
    for (uint64_t b = first; b <= last; b++) {
        if (block_plugged(dev, b))
            continue;
        if (write)
            return *why = "the range touches an unplugged block", 0;
        if ((b + 1) * dev->block_size > dev->usable_region_size)
            return *why = "the range touches an unplugged block outside the usable region", 0;
        if (negotiated(dev, VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE))
            return *why = "the range touches an unplugged block (UNPLUGGED_INACCESSIBLE)", 0;
    }
    return 1;
}

int vmem_read_memory(const struct vmem_dev *dev, uint64_t addr, uint64_t len, uint8_t *out, const char **why)
{
    if (!access_allowed(dev, addr, len, 0, why))
        return -1;
    uint64_t offset = addr - dev->addr;
    for (uint64_t done = 0; done < len;) {
        uint64_t pos = offset + done, in_page = pos % PAGE_SIZE;
        uint64_t n = PAGE_SIZE - in_page < len - done ? PAGE_SIZE - in_page : len - done;
        const struct vmem_page *p = find_page(dev, pos / PAGE_SIZE);
        if (p)
            memcpy(out + done, p->data + in_page, (size_t)n);
        else
            memset(out + done, 0, (size_t)n);
        done += n;
    }
    return 0;
}

int vmem_write_memory(struct vmem_dev *dev, uint64_t addr, uint64_t len, const uint8_t *data, const char **why)
{
    if (!access_allowed(dev, addr, len, 1, why))
        return -1;
    uint64_t offset = addr - dev->addr;
    for (uint64_t done = 0; done < len;) {
        uint64_t pos = offset + done, in_page = pos % PAGE_SIZE;
        uint64_t n = PAGE_SIZE - in_page < len - done ? PAGE_SIZE - in_page : len - done;
        struct vmem_page *p = get_page(dev, pos / PAGE_SIZE);
        if (!p)
            return *why = "out of memory for the memory store", -1;
        memcpy(p->data + in_page, data + done, (size_t)n);
        done += n;
    }
    return 0;
}
