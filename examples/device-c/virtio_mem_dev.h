/*
 * A virtio-mem device (virtio device ID 24), written from the virtio specification
 * ("Memory Device" device type and the core chapters on device status and feature bits).
 * It has no transport: a caller (harness.c, or a VMM's own virtqueue code) hands it the
 * device-readable bytes of a request chain and the room in its device-writable part.
 *
 * C11, libc only. All multi-byte fields on the wire and in the configuration are little-endian.
 */
#ifndef VIRTIO_MEM_DEV_H
#define VIRTIO_MEM_DEV_H

#include <stddef.h>
#include <stdint.h>

/* Feature bits (bit numbers). */
#define VIRTIO_MEM_F_ACPI_PXM 0
#define VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE 1
#define VIRTIO_MEM_F_PERSISTENT_SUSPEND 2
#define VIRTIO_F_VERSION_1 32

/* Request types, response types and STATE results. */
#define VIRTIO_MEM_REQ_PLUG 0
#define VIRTIO_MEM_REQ_UNPLUG 1
#define VIRTIO_MEM_REQ_UNPLUG_ALL 2
#define VIRTIO_MEM_REQ_STATE 3
#define VIRTIO_MEM_RESP_ACK 0
#define VIRTIO_MEM_RESP_NACK 1
#define VIRTIO_MEM_RESP_BUSY 2
#define VIRTIO_MEM_RESP_ERROR 3
#define VIRTIO_MEM_STATE_PLUGGED 0
#define VIRTIO_MEM_STATE_UNPLUGGED 1
#define VIRTIO_MEM_STATE_MIXED 2

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8

/* Sizes of the wire structures. */
#define VMEM_CONFIG_SIZE 56
#define VMEM_REQUEST_SIZE 24
#define VMEM_RESPONSE_SIZE 10

/* Most blocks a device may have (bounds the block bitmap at 32 MiB). */
#define VMEM_MAX_BLOCKS (UINT64_C(1) << 28)

/* How to build a device. */
struct vmem_setup {
    uint64_t block_size;
    uint64_t region_size;
    uint64_t addr;
    uint64_t requested_size;
    uint16_t node_id;
    int has_features;       /* 0: offer the default feature set */
    uint64_t features;      /* the offer when has_features */
    int has_usable;         /* 0: the device picks usable_region_size */
    uint64_t usable_region_size;
};

struct vmem_page; /* a 4 KiB page of the sparse memory store */

/* The device. Treat the fields as private; use the functions below. */
struct vmem_dev {
    uint64_t block_size, region_size, addr;
    uint64_t usable_region_size, plugged_size, requested_size;
    uint16_t node_id;
    uint64_t nb_blocks;       /* region_size / block_size */
    uint64_t *bitmap;         /* one bit per block: 1 = plugged */
    uint64_t offered;         /* device features */
    uint64_t driver_features; /* what the driver wrote */
    uint8_t status;
    uint8_t generation;       /* config_generation */
    uint32_t notifications;   /* configuration-change notifications sent */
    uint32_t busy_pending;    /* requests still to answer BUSY (inject-busy) */
    struct vmem_page **buckets;
    size_t nb_buckets, nb_pages;
};

/* Builds a device; returns 0, or -1 with *why set (a set-up this device cannot build). */
int vmem_open(struct vmem_dev *dev, const struct vmem_setup *setup, const char **why);
/* Plugs blocks [first, first + count) before a driver sees the device (initially plugged). */
int vmem_plug_initial(struct vmem_dev *dev, uint64_t first, uint64_t count, const char **why);
/* Frees everything the device holds. */
void vmem_close(struct vmem_dev *dev);

/* The 56 configuration bytes, little-endian. */
void vmem_read_config(const struct vmem_dev *dev, uint8_t out[VMEM_CONFIG_SIZE]);

/* Status register: writing 0 is a device reset. */
uint8_t vmem_read_status(const struct vmem_dev *dev);
void vmem_write_status(struct vmem_dev *dev, uint8_t status);
/* Feature registers. */
uint64_t vmem_device_features(const struct vmem_dev *dev);
void vmem_write_driver_features(struct vmem_dev *dev, uint64_t features);

/*
 * Processes one request chain: `req`/`req_len` are the device-readable bytes (gathered),
 * `writable_len` the room in the device-writable part. Writes the response to `resp` (at most
 * VMEM_RESPONSE_SIZE bytes) and returns the used length. Always produces a used entry.
 */
size_t vmem_handle_request(struct vmem_dev *dev, const uint8_t *req, size_t req_len, size_t writable_len,
                           uint8_t resp[VMEM_RESPONSE_SIZE]);

/* Host resize: returns 0, or -1 with *why (not a block multiple, beyond the region). */
int vmem_resize(struct vmem_dev *dev, uint64_t requested_size, const char **why);
/* System reset: unplugs every block, resets status and features. */
void vmem_system_reset(struct vmem_dev *dev);
/* Answer the next `count` PLUG/UNPLUG/UNPLUG ALL requests with BUSY. */
void vmem_inject_busy(struct vmem_dev *dev, uint32_t count);

/* Guest memory access inside the region: 0, or -1 with *why when the access is refused. */
int vmem_read_memory(const struct vmem_dev *dev, uint64_t addr, uint64_t len, uint8_t *out, const char **why);
int vmem_write_memory(struct vmem_dev *dev, uint64_t addr, uint64_t len, const uint8_t *data, const char **why);

#endif
