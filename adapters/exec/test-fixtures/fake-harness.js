#!/usr/bin/env node
/*
 * A small harness for the exec adapter's tests: a toy device and a toy driver speaking
 * vmemct-harness/1 over stdio (or a unix socket with --listen PATH). It misbehaves on purpose
 * when asked: `inject_busy` with a count from MISBEHAVIOUR below makes it break the protocol in
 * that way instead of replying. Options:
 *   --targets device|driver|both   the targets of the hello (default both)
 *   --device-caps a,b              device capabilities (default inject-busy,host-resize)
 *   --driver-caps a,b              driver capabilities (default system-reset)
 *   --pid-file PATH                appends its pid to PATH at start
 *   --count-file PATH              counts its starts in PATH; with --vary-version the version is that count
 *   --hello-protocol TEXT          the hello's protocol name (default vmemct-harness/1)
 *   --before-hello TEXT            writes TEXT as a line before the hello
 *   --no-hello                     never says hello
 *   --listen PATH                  serves connections on a unix socket instead of stdio
 *   --stubborn                     ignores the end of its input, shutdown and SIGTERM
 */
'use strict';
const fs = require('node:fs');
const net = require('node:net');

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const flag = (name) => argv.includes(`--${name}`);

const MISBEHAVIOUR = {
  1: 'malformed',
  2: 'non-object',
  3: 'wrong-id',
  4: 'wrong-type',
  5: 'huge',
  6: 'exit',
  7: 'silence',
  8: 'error',
  9: 'second-reply',
  10: 'stray-call',
};

let starts = 1;
const countFile = opt('count-file');
if (countFile) {
  starts = (fs.existsSync(countFile) ? Number(fs.readFileSync(countFile, 'utf8')) : 0) + 1;
  fs.writeFileSync(countFile, String(starts));
}
if (opt('pid-file')) fs.appendFileSync(opt('pid-file'), `${process.pid}\n`);
process.stderr.write(`fake harness ${process.pid} starting\n`);

const targetsOpt = opt('targets', 'both');
const targets = {};
const caps = (text) => (text === '' ? [] : text.split(','));
if (targetsOpt !== 'driver') targets.device = caps(opt('device-caps', 'inject-busy,host-resize'));
if (targetsOpt !== 'device') targets.driver = caps(opt('driver-caps', 'system-reset'));
const hello = {
  hello: opt('hello-protocol', 'vmemct-harness/1'),
  implementation: 'fake-harness',
  version: flag('vary-version') ? String(starts) : '1.0',
  targets,
};

const hex = (bytes) => Buffer.from(bytes).toString('hex');

/** One conversation: `write` sends a line; returns a function fed each received line. */
function conversation(write, exit) {
  let setup;
  let awaiting; // a function taking the next answer
  let status = 0;
  const send = (message) => write(`${JSON.stringify(message)}\n`);
  const config = () => {
    const bytes = Buffer.alloc(56);
    bytes.writeBigUInt64LE(BigInt(setup ? setup.block_size : 0), 0);
    return hex(bytes);
  };
  const misbehave = (id, how) => {
    switch (how) {
      case 'malformed':
        return write('{"id": oops\n');
      case 'non-object':
        return write('[1,2,3]\n');
      case 'wrong-id':
        return send({ id: id + 100, ok: true });
      case 'wrong-type':
        return send({ id, ok: 'yes' });
      case 'huge':
        return write(`{"id":${id},"ok":true,"pad":"${'x'.repeat(1024 * 1024 + 10)}"}\n`);
      case 'exit':
        return exit();
      case 'silence':
        return undefined;
      case 'error':
        return send({ id, ok: false, error: 'the toy device jammed' });
      case 'second-reply':
        send({ id, ok: true });
        return send({ id, ok: true });
      case 'stray-call':
        return send({ call: 'request', bytes: '00' });
    }
  };
  const handle = (m) => {
    switch (m.op) {
      case 'open_device':
        if (m.setup.node_id === 7) return send({ id: m.id, ok: false, unsupported: 'node 7 is not wired' });
        setup = m.setup;
        return send({ id: m.id, ok: true });
      case 'initialise':
        send({ call: 'accept', offered: '0x100000001' });
        awaiting = (a) => {
          status = 15;
          send({ id: m.id, ok: true, offered: '0x100000001', accepted: a.features, features_ok: true, status });
        };
        return undefined;
      case 'read_config':
        return send({ id: m.id, ok: true, config: config() });
      case 'read_status':
        return send({ id: m.id, ok: true, status });
      case 'notification_count':
        return send({ id: m.id, ok: true, count: 3 });
      case 'submit': {
        const writable = Buffer.from(m.writable.join(''), 'hex');
        writable[0] = 0;
        writable[1] = 0;
        return send({ id: m.id, ok: true, used: true, length: 4, written: hex(writable.subarray(0, 4)) });
      }
      case 'inject_busy':
        if (MISBEHAVIOUR[m.count]) return misbehave(m.id, MISBEHAVIOUR[m.count]);
        return send({ id: m.id, ok: true });
      case 'resize':
        return send(
          BigInt(m.requested_size) % 2n === 1n
            ? { id: m.id, ok: true, applied: false, reason: 'odd size' }
            : { id: m.id, ok: true, applied: true },
        );
      case 'open_driver':
        setup = m.setup;
        return send({ id: m.id, ok: true });
      case 'start':
        send({ call: 'read_config' });
        awaiting = (a) => {
          awaiting = undefined;
          send({ id: m.id, ok: true, accepted: a.config.length === 112 ? m.offered : '0x0' });
        };
        return undefined;
      case 'settle': {
        // PLUG one block at the region start, then write zeros there.
        const request = Buffer.alloc(24);
        request.writeUInt16LE(0, 0);
        request.writeBigUInt64LE(BigInt(setup.addr), 8);
        request.writeUInt16LE(1, 16);
        send({ call: 'request', bytes: hex(request), at_ms: 5 });
        awaiting = (a) => {
          send({ call: 'write_memory', addr: setup.addr, length: 16 });
          awaiting = (b) => {
            awaiting = undefined;
            const code = a.response === null ? 'none' : a.response.slice(0, 4);
            send({ id: m.id, ok: true, settled: true, stop: `idle: ${code} ${b.ok}`, waited_ms: 7 });
          };
        };
        return undefined;
      }
      case 'may_suspend':
        return send({ id: m.id, ok: true, allowed: false, detail: 'plugged memory' });
      case 'shutdown':
        send({ id: m.id, ok: true });
        return flag('stubborn') ? undefined : exit();
      default:
        return send({ id: m.id, ok: true });
    }
  };
  if (opt('before-hello')) write(`${opt('before-hello')}\n`);
  if (!flag('no-hello')) send(hello);
  return (line) => {
    if (line.trim() === '') return;
    const m = JSON.parse(line);
    if (m.answer !== undefined) {
      const next = awaiting;
      awaiting = undefined;
      return next && next(m);
    }
    return handle(m);
  };
}

function serve(input, write, exit) {
  const onLine = conversation(write, exit);
  let rest = '';
  input.setEncoding('utf8');
  input.on('data', (text) => {
    rest += text;
    let newline;
    while ((newline = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, newline);
      rest = rest.slice(newline + 1);
      onLine(line);
    }
  });
}

const listen = opt('listen');
if (listen) {
  const server = net.createServer((socket) =>
    serve(
      socket,
      (text) => socket.write(text),
      () => socket.end(),
    ),
  );
  process.on('SIGTERM', () => process.exit(0));
  // Readiness is announced once the socket accepts connections (the file exists from bind on).
  server.listen(listen, () => process.stdout.write('listening\n'));
} else {
  serve(
    process.stdin,
    (text) => process.stdout.write(text),
    () => process.exit(0),
  );
  if (flag('stubborn')) {
    process.on('SIGTERM', () => undefined);
    setInterval(() => undefined, 1000);
  } else process.stdin.on('end', () => process.exit(0));
}
