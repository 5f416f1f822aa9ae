#!/usr/bin/env python3
"""vmemct harness (protocol vmemct-harness/1, driver target) around the virtio-mem driver in
virtio_mem_driver.py. JSON Lines over stdin/stdout; diagnostics on stderr.

    vmemct run --adapter exec --command python3 --arg examples/driver-python/vmem_driver.py --target driver
"""

import json
import re
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ beside the example
from virtio_mem_driver import Driver  # noqa: E402

PROTOCOL = "vmemct-harness/1"
HELLO = {
    "hello": PROTOCOL,
    "implementation": "pyvmem-driver",
    "version": "0.1.0",
    "targets": {"driver": ["system-reset", "suspend"]},
}


class ProtocolError(Exception):
    """The suite sent something this harness cannot use; the command fails with ok:false."""


def send(message):
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def next_message():
    """The next non-blank line of stdin as a JSON object, or None at EOF."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError as e:
            raise ProtocolError(f"malformed JSON: {e.msg}") from None
        if not isinstance(message, dict):
            raise ProtocolError("a message must be a JSON object")
        return message
    return None


def u64(message, field, default=None):
    """A 64-bit value: "0x…" hex or decimal digits in a string."""
    value = message.get(field, default)
    if value is None:
        raise ProtocolError(f"missing field {field!r}")
    if isinstance(value, str) and re.fullmatch(r"0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20}", value):
        number = int(value, 0) if value[:2].lower() == "0x" else int(value, 10)
        if number < 1 << 64:
            return number
    raise ProtocolError(f"field {field!r} must be a 64-bit value as a string, got {value!r}")


def small(message, field, default=None):
    value = message.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError(f"field {field!r} must be a non-negative integer, got {value!r}")
    return value


def flag(message, field, default=None):
    value = message.get(field, default)
    if not isinstance(value, bool):
        raise ProtocolError(f"field {field!r} must be a boolean, got {value!r}")
    return value


def hex_bytes(message, field):
    value = message.get(field)
    if not isinstance(value, str):
        raise ProtocolError(f"field {field!r} must be a hex string, got {value!r}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ProtocolError(f"field {field!r} is not hex: {value!r}") from None


class SuitePort:
    """The driver's device, reached through calls to the suite (allowed during start and settle)."""

    def call(self, name, **fields):
        send({"call": name, **fields})
        answer = next_message()
        if answer is None:
            raise ProtocolError(f"end of input while waiting for the answer to {name}")
        if answer.get("answer") != name:
            raise ProtocolError(f"expected the answer to {name}, got {json.dumps(answer)[:200]}")
        return answer

    def read_config(self):
        answer = self.call("read_config")
        return hex_bytes(answer, "config"), flag(answer, "config_changed", False)

    def request(self, raw, at_ms):
        answer = self.call("request", bytes=raw.hex(), at_ms=at_ms)
        response = None if answer.get("response") is None else hex_bytes(answer, "response")
        return response, flag(answer, "config_changed", False)

    def write_memory(self, addr, length):
        answer = self.call("write_memory", addr=hex(addr), length=length)
        return flag(answer, "ok"), flag(answer, "config_changed", False)


class Harness:
    def __init__(self):
        self.port = SuitePort()
        self.driver = None  # the driver of the open session
        self.started = False

    def session(self):
        if self.driver is None:
            raise ProtocolError("no driver session: open_driver first")
        return self.driver

    def running(self):
        if not self.started:
            raise ProtocolError("the driver is not started: start first")
        return self.session()

    def op_open_driver(self, cmd):
        if not isinstance(cmd.get("setup"), dict):
            raise ProtocolError("field 'setup' must be an object")
        self.driver, self.started = Driver(), False  # config_padding: the suite shows it, we ignore it
        return {}

    def op_start(self, cmd):
        offered = u64(cmd, "offered")
        accepted = self.session().start(self.port, offered)
        self.started = True
        return {"accepted": hex(accepted)}

    def op_settle(self, cmd):
        max_requests = small(cmd, "max_requests")
        timeout_ms = small(cmd, "timeout_ms")
        changed = flag(cmd, "config_changed", False)
        settled, stop, waited = self.running().settle(self.port, max_requests, timeout_ms, changed)
        return {"settled": settled, "stop": stop, "waited_ms": waited}

    def op_reboot(self, cmd):
        old = self.session()
        self.driver, self.started = Driver(), False
        self.driver.clock_ms = old.clock_ms  # one clock per session: it never goes back
        return {}

    def op_may_suspend(self, cmd):
        allowed, detail = self.running().may_suspend()
        return {"allowed": allowed, "detail": detail}

    def op_close_driver(self, cmd):
        self.driver, self.started = None, False
        return {}

    def op_shutdown(self, cmd):
        self.driver, self.started = None, False
        return {}

    def handle(self, cmd):
        ident = cmd.get("id")
        if isinstance(ident, bool) or not isinstance(ident, int):
            raise ProtocolError(f"a command needs a numeric id, got {json.dumps(cmd)[:200]}")
        op = cmd.get("op")
        handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
        if handler is None:
            return {"id": ident, "ok": False, "error": f"unknown op {op!r}"}
        try:
            return {"id": ident, "ok": True, **handler(cmd)}
        except (ProtocolError, ValueError) as e:
            return {"id": ident, "ok": False, "error": f"{op}: {e}"}


def main():
    send(HELLO)
    harness = Harness()
    while True:
        try:
            cmd = next_message()
        except ProtocolError as e:
            send({"id": None, "ok": False, "error": str(e)})
            continue
        if cmd is None:
            return 0
        try:
            reply = harness.handle(cmd)
        except ProtocolError as e:  # the command itself was unusable (no id)
            reply = {"id": cmd.get("id") if isinstance(cmd.get("id"), int) else None, "ok": False, "error": str(e)}
        except Exception as e:  # a bug of the driver: report it, keep the session
            print(f"internal error: {type(e).__name__}: {e}", file=sys.stderr)
            reply = {"id": cmd.get("id"), "ok": False, "error": f"internal error: {type(e).__name__}: {e}"}
        send(reply)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(1)  # the suite went away
