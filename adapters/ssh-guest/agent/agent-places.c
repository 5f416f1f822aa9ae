/*
 * vmemct-agent, where an address leads: the virtio-mem PCI function (found in sysfs, unbound from
 * its driver, configuration space through sysfs `config`, memory BARs mapped from `resourceN`), the
 * DMA window (one locked 2 MiB hugetlb page, its address from /proc/self/pagemap) and the device
 * region (a /dev/mem mapping). Frames and operations are in vmemct-agent.c.
 */
#include "agent.h"

static struct {
  int open;
  uint32_t bdf;
  char name[64];
  int config_fd;
  uint64_t bar_base[BARS], bar_size[BARS];
  struct mapping bar[BARS];
} fn = {.config_fd = -1};
static struct mapping region, dma;

static void path_of(char *out, size_t size, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void path_of(char *out, size_t size, const char *format, ...) {
  char tail[512];
  va_list args;
  va_start(args, format);
  vsnprintf(tail, sizeof tail, format, args);
  va_end(args);
  snprintf(out, size, "%s%s", root, tail);
}

/* A small sysfs text file into `out` (NUL-terminated); -1 when it cannot be read. */
static int read_text(const char *path, char *out, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, out, size - 1);
  close(fd);
  if (n < 0) return -1;
  out[n] = 0;
  return 0;
}

static int write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = write_all(fd, text, strlen(text));
  close(fd);
  return r;
}

static const char *lockdown_state(void) {
  static char text[128];
  char path[600];
  path_of(path, sizeof path, "/sys/kernel/security/lockdown");
  if (read_text(path, text, sizeof text) < 0) return "unknown";
  text[strcspn(text, "\n")] = 0;
  return text;
}


/* --- the PCI function --------------------------------------------------------------------- */

static int parse_bdf(const char *name, uint32_t *bdf) {
  unsigned domain, bus, dev, func;
  char end;
  if (sscanf(name, "%4x:%2x:%2x.%1x%c", &domain, &bus, &dev, &func, &end) != 4) return -1;
  if (domain > 0xffff || bus > 0xff || dev > 0x1f || func > 7) return -1;
  *bdf = (domain << 16) | (bus << 8) | (dev << 3) | func;
  return 0;
}

static int is_virtio_mem(const char *name) {
  char path[600], text[32];
  path_of(path, sizeof path, "/sys/bus/pci/devices/%s/vendor", name);
  if (read_text(path, text, sizeof text) < 0 || strtoul(text, NULL, 16) != VENDOR_VIRTIO) return 0;
  path_of(path, sizeof path, "/sys/bus/pci/devices/%s/device", name);
  return read_text(path, text, sizeof text) == 0 && strtoul(text, NULL, 16) == DEVICE_VIRTIO_MEM;
}

static void close_function(void) {
  for (int i = 0; i < BARS; i++)
    if (fn.bar[i].at) munmap((void *)fn.bar[i].at, fn.bar[i].size);
  if (fn.config_fd >= 0) close(fn.config_fd);
  memset(&fn, 0, sizeof fn);
  fn.config_fd = -1;
}

static int find_function(uint32_t wanted) {
  char path[600], found[8][64], list[600] = "";
  unsigned count = 0;
  path_of(path, sizeof path, "/sys/bus/pci/devices");
  DIR *dir = opendir(path);
  if (!dir) return refuse(E_NO_DEVICE, "cannot list %s: %s (is sysfs mounted?)", path, strerror(errno));
  struct dirent *e;
  uint32_t bdf;
  while ((e = readdir(dir)) != NULL) {
    if (strlen(e->d_name) >= 64 || parse_bdf(e->d_name, &bdf) < 0 || !is_virtio_mem(e->d_name)) continue;
    if (wanted != ANY_FUNCTION && bdf != wanted) continue;
    if (count < 8) snprintf(found[count], 64, "%s", e->d_name);
    count++;
  }
  closedir(dir);
  if (count == 0)
    return refuse(E_NO_DEVICE, wanted == ANY_FUNCTION ? "no virtio-mem PCI function (1af4:1058) in %s"
                                                      : "no virtio-mem PCI function at the given BDF in %s", path);
  if (count > 1) {
    for (unsigned i = 0; i < count && i < 8; i++) {
      strncat(list, " ", sizeof list - strlen(list) - 1);
      strncat(list, found[i], sizeof list - strlen(list) - 1);
    }
    return refuse(E_SEVERAL, "%u virtio-mem PCI functions (%s ); name one by BDF", count, list);
  }
  snprintf(fn.name, sizeof fn.name, "%s", found[0]);
  parse_bdf(fn.name, &fn.bdf);
  return 0;
}

/* Unbinds whatever driver holds the function (virtio-pci, and virtio_mem with it). */
static int unbind(int *unbound) {
  char path[600];
  struct stat st;
  *unbound = 0;
  path_of(path, sizeof path, "/sys/bus/pci/devices/%s/driver", fn.name);
  if (lstat(path, &st) < 0) return 0;
  path_of(path, sizeof path, "/sys/bus/pci/devices/%s/driver/unbind", fn.name);
  if (write_text(path, fn.name) < 0)
    return refuse(E_IO, "cannot unbind %s from its driver (%s: %s)", fn.name, path, strerror(errno));
  *unbound = 1;
  return 0;
}

static int map_bars(void) {
  char path[600], text[4096];
  path_of(path, sizeof path, "/sys/bus/pci/devices/%s/resource", fn.name);
  if (read_text(path, text, sizeof text) < 0)
    return refuse(E_IO, "cannot read %s: %s (no sysfs resource file)", path, strerror(errno));
  char *line = text;
  for (int i = 0; i < BARS && line && *line; i++) {
    unsigned long long start, end, flags;
    if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3)
      return refuse(E_IO, "%s: line %d is not 'start end flags'", path, i + 1);
    line = strchr(line, '\n');
    if (line) line++;
    if (!(flags & 0x200) || end <= start) continue; /* IORESOURCE_MEM, assigned */
    fn.bar_base[i] = start;
    fn.bar_size[i] = end - start + 1;
    path_of(path, sizeof path, "/sys/bus/pci/devices/%s/resource%d", fn.name, i);
    int fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
    if (fd < 0) return refuse(E_IO, "cannot open %s: %s", path, strerror(errno));
    uint64_t size = (fn.bar_size[i] + PAGE - 1) & ~(PAGE - 1);
    void *at = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int err = errno;
    close(fd);
    if (at == MAP_FAILED)
      return refuse(err == EPERM ? E_LOCKDOWN : E_IO, "cannot map BAR %d (%s): %s (kernel lockdown: %s)", i, path,
                    strerror(err), lockdown_state());
    fn.bar[i] = (struct mapping){fn.bar_base[i], size, at};
  }
  return 0;
}

int open_function(uint32_t wanted) {
  char path[600], text[16];
  int unbound;
  close_function();
  if (find_function(wanted) < 0 || unbind(&unbound) < 0) return -1;
  path_of(path, sizeof path, "/sys/bus/pci/devices/%s/enable", fn.name);
  if (read_text(path, text, sizeof text) == 0 && text[0] == '0' && write_text(path, "1") < 0)
    return refuse(E_IO, "cannot enable %s (%s: %s)", fn.name, path, strerror(errno));
  path_of(path, sizeof path, "/sys/bus/pci/devices/%s/config", fn.name);
  fn.config_fd = open(path, O_RDWR | O_CLOEXEC);
  if (fn.config_fd < 0) return refuse(E_IO, "cannot open %s: %s", path, strerror(errno));
  uint8_t id[4];
  if (pread(fn.config_fd, id, 4, 0) != 4) return refuse(E_IO, "cannot read %s: %s", path, strerror(errno));
  if (map_bars() < 0) return -1;
  fn.open = 1;
  uint32_t bars = 0;
  for (int i = 0; i < BARS; i++)
    if (fn.bar[i].at) bars |= 1u << i;
  put(fn.bdf, 4);
  put(get(id, 2), 2);
  put(get(id + 2, 2), 2);
  put(bars, 4);
  put((uint32_t)unbound, 4);
  for (int i = 0; i < BARS; i++) {
    put(fn.bar_base[i], 8);
    put(fn.bar_size[i], 8);
  }
  return 0;
}

/* --- memory: the DMA window and the device region ---------------------------------------- */

int dma_window(void) {
  if (!dma.at && test_mode) {
    void *at = mmap(NULL, DMA_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (at == MAP_FAILED) return refuse(E_NO_HUGEPAGE, "test mode: no memory: %s", strerror(errno));
    dma = (struct mapping){FAKE_DMA_BASE, DMA_BYTES, at};
  }
  if (!dma.at) {
    char path[600], text[32];
    path_of(path, sizeof path, "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
    if (read_text(path, text, sizeof text) == 0 && strtoul(text, NULL, 10) == 0) {
      char now[32], more[32];
      path_of(path, sizeof path, "/proc/sys/vm/nr_hugepages");
      if (read_text(path, now, sizeof now) == 0) {
        snprintf(more, sizeof more, "%lu", strtoul(now, NULL, 10) + 1);
        write_text(path, more);
      }
    }
    void *at = mmap(NULL, DMA_BYTES, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT) | MAP_POPULATE, -1, 0);
    if (at == MAP_FAILED)
      return refuse(E_NO_HUGEPAGE,
                    "no 2 MiB hugetlb page for the DMA window (%s); reserve one with `echo 1 > "
                    "/proc/sys/vm/nr_hugepages` or boot with hugepages=1",
                    strerror(errno));
    if (mlock(at, DMA_BYTES) < 0) {
      munmap(at, DMA_BYTES);
      return refuse(E_NO_HUGEPAGE, "cannot lock the DMA window: %s", strerror(errno));
    }
    memset(at, 0, DMA_BYTES);
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    uint64_t entry[DMA_BYTES / PAGE];
    size_t want = sizeof entry;
    off_t from = (off_t)((uintptr_t)at / PAGE * 8);
    if (fd < 0 || pread(fd, entry, want, from) != (ssize_t)want) {
      int err = errno;
      if (fd >= 0) close(fd);
      munmap(at, DMA_BYTES);
      return refuse(E_NOT_CONTIGUOUS, "cannot read /proc/self/pagemap: %s (the agent must run as root)",
                    strerror(err));
    }
    close(fd);
    uint64_t pfn0 = entry[0] & ((1ull << 55) - 1);
    for (size_t i = 0; i < DMA_BYTES / PAGE; i++) {
      uint64_t pfn = entry[i] & ((1ull << 55) - 1);
      if (!(entry[i] >> 63) || pfn0 == 0 || pfn != pfn0 + i) {
        munmap(at, DMA_BYTES);
        return refuse(E_NOT_CONTIGUOUS, "the DMA window is not physically contiguous at page %zu (pfn %#llx)", i,
                      (unsigned long long)pfn);
      }
    }
    dma = (struct mapping){pfn0 * PAGE, DMA_BYTES, at};
  }
  put(dma.base, 8);
  put(dma.size, 8);
  return 0;
}

int set_region(uint64_t base, uint64_t length) {
  if (region.at) munmap((void *)region.at, region.size);
  region = (struct mapping){0, 0, NULL};
  if (length == 0) return 0;
  if (base % PAGE || length % PAGE || length > (1ull << 40) || base > UINT64_MAX - length)
    return refuse(E_ACCESS, "device region %#llx+%#llx is not page-aligned or too large", (unsigned long long)base,
                  (unsigned long long)length);
  char path[600];
  path_of(path, sizeof path, "/dev/mem");
  int fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
  if (fd < 0) return refuse(E_DEVMEM, "cannot open %s: %s (the agent must run as root)", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < base + length) {
    close(fd);
    return refuse(E_DEVMEM, "%s ends before %#llx", path, (unsigned long long)(base + length));
  }
  void *at = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)base);
  int err = errno;
  close(fd);
  if (at == MAP_FAILED)
    return refuse(E_DEVMEM,
                  "the kernel refused to map the device region %#llx+%#llx from /dev/mem: %s (STRICT_DEVMEM refuses "
                  "memory the guest uses as System RAM: keep virtio_mem unbound; kernel lockdown: %s)",
                  (unsigned long long)base, (unsigned long long)length, strerror(err), lockdown_state());
  region = (struct mapping){base, length, at};
  return 0;
}

/* Where [addr, addr+length) is mapped, if wholly inside `m`. */
static volatile uint8_t *inside(const struct mapping *m, uint64_t addr, uint64_t length) {
  if (!m->at || addr < m->base || length > m->size || addr - m->base > m->size - length) return NULL;
  return m->at + (addr - m->base);
}

/* The mapping of a guest-physical range: BARs (scalar accesses only), the DMA window, the region. */
volatile uint8_t *locate(uint64_t addr, uint64_t length, int scalar) {
  volatile uint8_t *p;
  for (int i = 0; i < BARS; i++)
    if ((p = inside(&fn.bar[i], addr, length)) != NULL) {
      if (scalar) return p;
      refuse(E_ACCESS, "%#llx is in BAR %d: registers take scalar accesses of their natural width",
             (unsigned long long)addr, i);
      return NULL;
    }
  if ((p = inside(&dma, addr, length)) != NULL || (p = inside(&region, addr, length)) != NULL) return p;
  refuse(E_ACCESS, "%#llx+%#llx is outside the open function's BARs, the DMA window and the device region",
         (unsigned long long)addr, (unsigned long long)length);
  return NULL;
}


int config_access(const struct op *o, int write) {
  if (!fn.open) return refuse(E_NOT_OPEN, "configuration space access before open");
  if (o->offset % o->width) return refuse(E_ACCESS, "config offset %#x is not aligned to %u", o->offset, o->width);
  uint8_t b[4];
  ssize_t n;
  if (write) {
    memcpy(b, &o->value32, 4);
    n = pwrite(fn.config_fd, b, o->width, o->offset);
  } else {
    memset(b, 0, 4);
    n = pread(fn.config_fd, b, o->width, o->offset);
  }
  if (n < 0)
    return refuse(E_IO, "config %s of %u at %#x: %s", write ? "write" : "read", o->width, o->offset, strerror(errno));
  if (n != o->width)
    return refuse(E_ACCESS, "config %s of %u at %#x: beyond the end of configuration space", write ? "write" : "read",
                  o->width, o->offset);
  if (!write) put(get(b, 4), 4);
  return 0;
}

