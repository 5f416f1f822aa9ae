"""A virtio-mem guest driver (virtio device 24), written from the VIRTIO 1.4 specification,
section "Memory Device" (device-types/mem). Standard library only.

The driver is transport-free: it talks to its device through a `port` object with three methods
(the harness in vmem_driver.py implements them over the vmemct harness protocol):

    port.read_config() -> (config: bytes (56), config_changed: bool)
    port.request(req: bytes (24), at_ms: int) -> (response: bytes | None, config_changed: bool)
    port.write_memory(addr: int, length: int) -> (ok: bool, config_changed: bool)

Time is virtual: the driver never sleeps. Waiting (the backoff after BUSY) only moves `clock_ms`.
"""

import struct

# ---------------------------------------------------------------- constants from the spec

VIRTIO_F_VERSION_1 = 32
VIRTIO_MEM_F_ACPI_PXM = 0
VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE = 1
VIRTIO_MEM_F_PERSISTENT_SUSPEND = 2

#: Every feature bit this driver understands; it accepts the offered subset of these.
SUPPORTED_FEATURES = (
    (1 << VIRTIO_F_VERSION_1)
    | (1 << VIRTIO_MEM_F_ACPI_PXM)
    | (1 << VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE)
    | (1 << VIRTIO_MEM_F_PERSISTENT_SUSPEND)
)

REQ_PLUG, REQ_UNPLUG, REQ_UNPLUG_ALL, REQ_STATE = 0, 1, 2, 3
REQ_NAMES = {REQ_PLUG: "PLUG", REQ_UNPLUG: "UNPLUG", REQ_UNPLUG_ALL: "UNPLUG_ALL", REQ_STATE: "STATE"}
RESP_ACK, RESP_NACK, RESP_BUSY, RESP_ERROR = 0, 1, 2, 3
STATE_PLUGGED, STATE_UNPLUGGED, STATE_MIXED = 0, 1, 2

#: struct virtio_mem_config: block_size, node_id, padding[6], addr, region_size,
#: usable_region_size, plugged_size, requested_size (all little endian, 56 bytes).
CONFIG_LAYOUT = struct.Struct("<QH6xQQQQQ")
#: struct virtio_mem_req: type, padding[3], addr, nb_blocks, padding[3] (24 bytes).
REQUEST_LAYOUT = struct.Struct("<H6xQH6x")
#: nb_blocks is a le16: one request covers at most this many blocks.
MAX_NB_BLOCKS = 0xFFFF

# ---------------------------------------------------------------- driver policy

#: First wait after a BUSY answer, doubled after every further BUSY up to BUSY_BACKOFF_MAX_MS.
BUSY_BACKOFF_FIRST_MS = 50
BUSY_BACKOFF_MAX_MS = 2000
#: UNPLUG ALL at start is repeated until acknowledged (spec: "until successful"), but not forever.
UNPLUG_ALL_MAX_ATTEMPTS = 64

# DELIBERATE DEVIATION (seeded so that the conformance gate is seen catching a real bug class):
# when the device answers BUSY, retry at once instead of backing off. Real drivers have shipped
# busy loops like this; a device that is BUSY because the host is busy then gets hammered.
# Set to False for the conforming behaviour (wait BUSY_BACKOFF_FIRST_MS, doubling).
RETRY_BUSY_WITHOUT_BACKOFF = True


class BlockSet:
    """A set of block indices kept as sorted, disjoint, non-adjacent [start, end) runs."""

    def __init__(self):
        self.runs = []

    def count(self):
        return sum(end - start for start, end in self.runs)

    def clear(self):
        self.runs = []

    def add(self, start, end):
        self.runs.append((start, end))
        self.runs.sort()
        merged = []
        for s, e in self.runs:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self.runs = merged

    def remove(self, start, end):
        out = []
        for s, e in self.runs:
            if e <= start or s >= end:
                out.append((s, e))
                continue
            if s < start:
                out.append((s, start))
            if e > end:
                out.append((end, e))
        self.runs = out

    def first_gap(self, limit):
        """The lowest run of blocks in [0, limit) outside the set, as (start, end), or None."""
        cursor = 0
        for s, e in self.runs:
            if s > cursor:
                return (cursor, min(s, limit)) if cursor < limit else None
            cursor = e
        return (cursor, limit) if cursor < limit else None

    def segments(self, start, end):
        """[start, end) cut into (start, end, in_set) pieces wholly in or out of the set."""
        out, cursor = [], start
        for s, e in self.runs:
            if e <= cursor:
                continue
            if s >= end:
                break
            if s > cursor:
                out.append((cursor, s, False))
            out.append((max(s, cursor), min(e, end), True))
            cursor = min(e, end)
        if cursor < end:
            out.append((cursor, end, False))
        return out


class Config:
    """The device configuration as the driver read it."""

    def __init__(self, raw):
        if len(raw) != CONFIG_LAYOUT.size:
            raise ValueError(f"configuration is {len(raw)} bytes, expected {CONFIG_LAYOUT.size}")
        (
            self.block_size,
            self.node_id,
            self.addr,
            self.region_size,
            self.usable_region_size,
            self.plugged_size,
            self.requested_size,
        ) = CONFIG_LAYOUT.unpack(raw)
        # The padding (bytes 10..15) is not even looked at (spec: the driver ignores it).

    def problem(self):
        """Why this configuration cannot be driven safely, or None."""
        bs = self.block_size
        if bs == 0 or bs & (bs - 1):
            return f"block_size {bs:#x} is not a power of two"
        for name in ("addr", "region_size"):
            if getattr(self, name) % bs:
                return f"{name} {getattr(self, name):#x} is not a multiple of block_size {bs:#x}"
        if self.usable_region_size > self.region_size:
            return "usable_region_size exceeds region_size"
        return None


class Driver:
    """One probed instance of the driver. A reboot makes a new one."""

    def __init__(self):
        self.accepted = 0
        self.cfg = None
        self.refused = None  # why the device is not driven (bad configuration)
        self.broken = None  # why the driver stopped using the device
        self.plugged = BlockSet()  # blocks the driver knows to be plugged (and initialised)
        self.unplug_all_pending = False  # memory found plugged at start, not yet cleared
        self.unplug_all_attempts = 0
        self.resync = []  # STATE ranges still to ask about, as (start, end) block runs
        self.in_doubt = False  # block states not known (between an ERROR and a finished resync)
        self.error_strikes = 0  # ERROR answers since the last acknowledged PLUG/UNPLUG/UNPLUG ALL
        self.plug_held_at = None  # (requested, usable) when a PLUG was NACKed
        self.unplug_held_at = None  # (requested, usable) when an UNPLUG was NACKed
        self.retry_at_ms = 0  # no request before this virtual time (BUSY backoff)
        self.backoff_ms = BUSY_BACKOFF_FIRST_MS
        self.clock_ms = 0
        self.waited_ms = 0
        self._config_dirty = False

    # ------------------------------------------------------------ probe

    def start(self, port, offered):
        """Feature negotiation and the first configuration read. Returns the accepted features."""
        self.accepted = offered & SUPPORTED_FEATURES
        self._read_config(port)
        if self.cfg.plugged_size > 0:
            if self.refused:
                self.in_doubt = True  # memory is plugged and the driver cannot clear it
            else:
                self.unplug_all_pending = True  # spec: UNPLUG ALL until successful
        return self.accepted

    def negotiated(self, bit):
        return bool(self.accepted & (1 << bit))

    def _read_config(self, port):
        raw, _ = port.read_config()
        old = self.cfg
        self.cfg = Config(raw)
        if self.refused is None and old is None:
            self.refused = self.cfg.problem()
        if old is not None:
            # Fields that cannot change (node_id is not even looked at without ACPI_PXM).
            for name in ("block_size", "addr", "region_size"):
                if getattr(old, name) != getattr(self.cfg, name) and not self.refused:
                    self.broken = f"{name} changed from {getattr(old, name):#x} to {getattr(self.cfg, name):#x}"
                    self.in_doubt = True
        if old is not None and (old.requested_size, old.usable_region_size) != (
            self.cfg.requested_size,
            self.cfg.usable_region_size,
        ):
            self.retry_at_ms = min(self.retry_at_ms, self.clock_ms)  # a resize cuts a backoff short

    # ------------------------------------------------------------ what to do next

    def usable_blocks(self):
        return self.cfg.usable_region_size // self.cfg.block_size

    def target_blocks(self):
        # Whole blocks only, never past the usable region (spec: the driver MAY fall short).
        return min(self.cfg.requested_size // self.cfg.block_size, self.usable_blocks())

    def _limits(self):
        return (self.cfg.requested_size, self.cfg.usable_region_size)

    def next_request(self):
        """(type, first_block, nb_blocks) of the next request, or (None, why the driver is idle)."""
        if self.refused:
            return None, f"refused: {self.refused}"
        if self.unplug_all_pending:
            return (REQ_UNPLUG_ALL, 0, 0), None
        if self.resync:
            start, end = self.resync[0]
            return (REQ_STATE, start, end - start), None
        have, want = self.plugged.count(), self.target_blocks()
        if have < want:
            if self.plug_held_at == self._limits():
                return None, "idle: PLUG was NACKed; waiting for a configuration change"
            gap = self.plugged.first_gap(self.usable_blocks())
            if gap is not None:
                start, end = gap
                return (REQ_PLUG, start, min(end - start, want - have, MAX_NB_BLOCKS)), None
            return None, "idle: no unplugged block left in the usable region"
        if have > want:
            if self.unplug_held_at == self._limits():
                return None, "idle: UNPLUG was NACKed; waiting for a configuration change"
            start, end = self.plugged.runs[-1]
            count = min(end - start, have - want, MAX_NB_BLOCKS)
            return (REQ_UNPLUG, end - count, count), None
        if want * self.cfg.block_size < self.cfg.requested_size:
            return None, "idle: as close to requested_size as whole usable blocks allow"
        return None, "idle: converged"

    # ------------------------------------------------------------ settle

    def settle(self, port, max_requests, timeout_ms, config_changed):
        """Work until idle or a limit. Returns (settled, stop, waited_ms)."""
        began, waited_before, sent = self.clock_ms, self.waited_ms, 0
        self._config_dirty = config_changed
        while True:
            if self._config_dirty and not self.broken:
                self._config_dirty = False
                self._read_config(port)
            if self.broken:
                return True, f"broken: {self.broken}", self.waited_ms - waited_before
            action, idle = self.next_request()
            if action is None:
                return True, idle, self.waited_ms - waited_before
            if sent >= max_requests:
                return False, f"request limit ({max_requests}) reached", self.waited_ms - waited_before
            if self.retry_at_ms > self.clock_ms:
                if self.retry_at_ms - began > timeout_ms:
                    self._wait(began + timeout_ms)
                    return False, f"timeout ({timeout_ms} ms) while backing off", self.waited_ms - waited_before
                self._wait(self.retry_at_ms)
            sent += 1
            self._send(port, *action)

    def _wait(self, until_ms):
        if until_ms > self.clock_ms:
            self.waited_ms += until_ms - self.clock_ms
            self.clock_ms = until_ms

    def _block_addr(self, block):
        return self.cfg.addr + block * self.cfg.block_size

    def _send(self, port, req_type, first, count):
        addr = self._block_addr(first) if req_type != REQ_UNPLUG_ALL else 0
        raw = REQUEST_LAYOUT.pack(req_type, addr, count)
        response, changed = port.request(raw, self.clock_ms)
        self._config_dirty |= changed
        name = REQ_NAMES[req_type]
        if response is None or len(response) < 2:
            self.broken = f"no response to {name}" if response is None else f"short response to {name}"
            return
        # Only the type counts (and, for an acknowledged STATE, the state field): the rest of a
        # response is padding the driver ignores.
        (resp_type,) = struct.unpack_from("<H", response, 0)
        if resp_type == RESP_ACK:
            if req_type != REQ_STATE:
                self.error_strikes = 0  # a resync does not clear the strike: a second ERROR breaks
            self.backoff_ms = BUSY_BACKOFF_FIRST_MS
            self._on_ack(port, req_type, first, count, response)
        elif resp_type == RESP_BUSY:
            self._on_busy()
        elif resp_type == RESP_NACK:
            self._on_nack(req_type, name)
        elif resp_type == RESP_ERROR:
            self._on_error(req_type, name)
        else:
            self.broken = f"unknown response type {resp_type} to {name}"

    def _on_ack(self, port, req_type, first, count, response):
        if req_type == REQ_PLUG:
            self.plugged.add(first, first + count)
            if not self._initialise(port, first, first + count):
                self._begin_resync()  # the device disagrees that these blocks are plugged
        elif req_type == REQ_UNPLUG:
            self.plugged.remove(first, first + count)
        elif req_type == REQ_UNPLUG_ALL:
            self.plugged.clear()
            self.unplug_all_pending = False
            self.in_doubt = False
            self._config_dirty = True  # usable_region_size may have shrunk
        elif req_type == REQ_STATE:
            self._on_state(port, first, count, response)

    def _on_state(self, port, first, count, response):
        if len(response) < 10:
            self.broken = "STATE acknowledged without a state field"
            return
        (state,) = struct.unpack_from("<H", response, 8)
        self.resync.pop(0)
        if state == STATE_PLUGGED:
            fresh = [(s, e) for s, e, known in self.plugged.segments(first, first + count) if not known]
            self.plugged.add(first, first + count)
            for s, e in fresh:  # the content of a block plugged behind the driver's back is undefined
                if not self._initialise(port, s, e):
                    self.broken = "the device refused a write to blocks it reports plugged"
                    return
        elif state == STATE_UNPLUGGED:
            self.plugged.remove(first, first + count)
        elif state == STATE_MIXED and count > 1:
            half = count // 2
            self.resync[0:0] = [(first, first + half), (first + half, first + count)]
        else:
            self.broken = f"STATE answered with state {state} for {count} block(s)"
            return
        if not self.resync:
            self.in_doubt = False

    def _initialise(self, port, start, end):
        """Zero newly plugged memory (spec: its content is undefined)."""
        ok, changed = port.write_memory(self._block_addr(start), (end - start) * self.cfg.block_size)
        self._config_dirty |= changed
        return ok

    def _on_busy(self):
        if RETRY_BUSY_WITHOUT_BACKOFF:
            self.retry_at_ms = self.clock_ms
            return
        self.retry_at_ms = self.clock_ms + self.backoff_ms
        self.backoff_ms = min(self.backoff_ms * 2, BUSY_BACKOFF_MAX_MS)

    def _on_nack(self, req_type, name):
        if req_type == REQ_PLUG:
            self.plug_held_at = self._limits()  # no further PLUG until requested/usable change
        elif req_type == REQ_UNPLUG:
            self.unplug_held_at = self._limits()
        elif req_type == REQ_UNPLUG_ALL:
            self._retry_unplug_all("NACK")
        else:
            self.broken = f"NACK to {name}"

    def _on_error(self, req_type, name):
        if req_type == REQ_UNPLUG_ALL:
            self._retry_unplug_all("ERROR")
            return
        self.error_strikes += 1
        if req_type == REQ_STATE or self.error_strikes > 1:
            self.broken = f"ERROR to {name}"
            self.in_doubt = True
            return
        # The driver's view of the blocks is in doubt: learn them again with STATE.
        self._begin_resync()

    def _retry_unplug_all(self, why):
        self.unplug_all_attempts += 1
        if self.unplug_all_attempts >= UNPLUG_ALL_MAX_ATTEMPTS:
            self.broken = f"UNPLUG_ALL still answered {why} after {self.unplug_all_attempts} attempts"
            return
        self._on_busy()  # same backoff as for BUSY

    def _begin_resync(self):
        self.in_doubt = True
        self.resync = []
        for start, end, _ in self.plugged.segments(0, self.usable_blocks()):
            while start < end:
                step = min(end - start, MAX_NB_BLOCKS)
                self.resync.append((start, start + step))
                start += step

    # ------------------------------------------------------------ suspend

    def may_suspend(self):
        """(allowed, detail): without PERSISTENT_SUSPEND, never (drv.op.11 makes no exception
        for "nothing plugged"); the detail says what the driver knows."""
        if self.negotiated(VIRTIO_MEM_F_PERSISTENT_SUSPEND):
            return True, "PERSISTENT_SUSPEND negotiated: block states survive suspend"
        if self.unplug_all_pending:
            return False, "memory found plugged at start is not unplugged yet"
        if self.in_doubt:
            return False, "block states are not known"
        plugged = self.plugged.count()
        if plugged:
            return False, f"{plugged} block(s) plugged and PERSISTENT_SUSPEND not negotiated"
        return False, "PERSISTENT_SUSPEND not negotiated (drv.op.11), even with nothing plugged"
