#!/usr/bin/env node
/*
 * A hostile harness for the hostile suite (adapters/exec/test/exec-harness.hostile-test.ts):
 * a toy virtio-mem device and driver speaking vmemct-harness/1 over stdio that serve vectors
 * well, except the *victim* — the vector whose set-up has node_id 1 — where, at the command the
 * mode names, they break the protocol in the way MODE says.
 *
 *   node hostile-harness.js MODE --record FILE [--plan FILE]
 *
 * Every start, grandchild and misbehaviour is appended to the record file as a line
 * (`start PID`, `grandchild PID`, `trigger MODE`, `mutate NODE KIND`) so the test can check
 * that no process is left behind and which vectors were hit. Mode `mix` reads a plan (a JSON
 * array of reply mutations, one per reply, cycled) instead of a victim.
 */
'use strict';
const fs = require('node:fs');
const { spawn } = require('node:child_process');

const [mode, ...rest] = process.argv.slice(2);
const opt = (name) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : undefined;
};
const recordFile = opt('record');
const record = (line) => recordFile && fs.appendFileSync(recordFile, `${line}\n`);
const starts = recordFile && fs.existsSync(recordFile) ? fs.readFileSync(recordFile, 'utf8').split('start ').length : 1;
record(`start ${process.pid}`);
process.stderr.write(`hostile harness ${process.pid} (${mode}) starting\n`);

/** Which command of the victim vector misbehaves, per mode (read_config when not listed). */
const TRIGGER = {
  'status-infinite': 'initialise',
  'status-negative': 'initialise',
  'status-2-to-64': 'initialise',
  'accepted-40-hex-digits': 'initialise',
  'written-too-long': 'submit',
  'length-beyond-writable': 'submit',
  'call-flood': 'settle',
  'request-flood': 'settle',
  'exit-on-close': 'close_device',
};
const MIB = 1024 * 1024;
const BIG = 100 * MIB;

const out = process.stdout;
const write = (text) => out.write(text);
/** Where replies go: the output, or (mode `mix`) a function that mutates them first. */
let capture;
const send = (message) => (capture ? capture(message) : write(`${JSON.stringify(message)}\n`));
const hex = (bytes) => Buffer.from(bytes).toString('hex');
const sleepForever = () => setInterval(() => undefined, 60_000);

/** Writes `total` bytes of `byte` to a stream in 1 MiB pieces, waiting for it to drain; then `done`. */
function flood(stream, total, byte, done) {
  const piece = Buffer.alloc(MIB, byte);
  let left = total;
  const next = () => {
    while (left > 0) {
      left -= piece.length;
      if (!stream.write(piece)) return void stream.once('drain', next);
    }
    done();
  };
  next();
}

function spawnGrandchild(stdio) {
  const child = spawn('sleep', ['600'], { stdio, detached: false });
  record(`grandchild ${child.pid}`);
  child.unref();
}
if (mode === 'grandchild-holds-output') spawnGrandchild('inherit');
if (mode === 'grandchild-quiet') spawnGrandchild('ignore');

const version = mode === 'hello-changes' ? String(starts) : '1.0';
const hello = {
  hello: 'vmemct-harness/1',
  implementation: 'hostile-harness',
  version,
  targets: { device: [], driver: [] },
};
// Claims to be very slow: vmemct's timers must not overflow (Node.js fires a too-long timer at once).
if (mode === 'huge-multiplier') hello.timeout_multiplier = 1e300;

let setup;
let awaiting;
let status = 0;
let plugged = 0n;
let replies = 0;
const plan = opt('plan') ? JSON.parse(fs.readFileSync(opt('plan'), 'utf8')) : [];

function config() {
  const bytes = Buffer.alloc(56);
  bytes.writeBigUInt64LE(BigInt(setup.block_size), 0);
  bytes.writeUInt16LE(setup.node_id, 8);
  bytes.writeBigUInt64LE(BigInt(setup.addr), 16);
  bytes.writeBigUInt64LE(BigInt(setup.region_size), 24);
  bytes.writeBigUInt64LE(BigInt(setup.region_size), 32);
  bytes.writeBigUInt64LE(plugged, 40);
  bytes.writeBigUInt64LE(BigInt(setup.requested_size), 48);
  return hex(bytes);
}

/** The well-formed reply to `m` (calls for initialise, start and settle). */
function serve(m) {
  switch (m.op) {
    case 'open_device':
    case 'open_driver':
      setup = m.setup;
      plugged = 0n;
      return send({ id: m.id, ok: true });
    case 'initialise':
      send({ call: 'accept', offered: '0x100000000' });
      awaiting = (a) => {
        status = 15;
        send({ id: m.id, ok: true, offered: '0x100000000', accepted: a.features, features_ok: true, status });
      };
      return undefined;
    case 'read_config':
      return send({ id: m.id, ok: true, config: config() });
    case 'read_status':
      return send({ id: m.id, ok: true, status });
    case 'notification_count':
      return send({ id: m.id, ok: true, count: 0 });
    case 'submit': {
      // Every request is acknowledged (ACK is type 0); a PLUG counts its blocks.
      const request = Buffer.from(m.readable.join(''), 'hex');
      if (request.readUInt16LE(0) === 0) plugged += BigInt(request.readUInt16LE(16)) * BigInt(setup.block_size);
      return send({ id: m.id, ok: true, used: true, length: 10, written: '00'.repeat(10) });
    }
    case 'start':
      send({ call: 'read_config' });
      awaiting = () => send({ id: m.id, ok: true, accepted: m.offered });
      return undefined;
    case 'settle':
      return send({ id: m.id, ok: true, settled: true, stop: 'idle: nothing to do', waited_ms: 0 });
    case 'shutdown':
      send({ id: m.id, ok: true });
      return process.exit(0);
    default:
      return send({ id: m.id, ok: true });
  }
}

/** The victim's misbehaviour at its trigger command. */
function misbehave(m) {
  if (mode !== 'good') record(`trigger ${mode}`);
  const deep = (n) => `${'['.repeat(n)}${']'.repeat(n)}`;
  switch (mode) {
    case 'garbage':
      return write(Buffer.from([0xff, 0x00, 0x7b, 0x80, 0xfe, 0x22, 0x0a]));
    case 'invalid-utf8':
      write(`{"id":${m.id},"ok":true,"config":"${config()}","note":"`);
      write(Buffer.from([0xc3, 0x28, 0xa0, 0xa1]));
      return write('"}\n');
    case 'deep-array':
      return write(`${deep(100_000)}\n`);
    case 'deep-field':
      return write(`{"id":${m.id},"ok":true,"config":${deep(100_000)}}\n`);
    case 'deep-unknown-field':
      return write(`{"id":${m.id},"ok":true,"config":"${config()}","extra":${deep(100_000)}}\n`);
    case 'huge-line':
      write(`{"id":${m.id},"ok":true,"pad":"`);
      return flood(out, BIG, 0x78, () => write('"}\n'));
    case 'huge-line-no-newline':
      return flood(out, BIG, 0x78, () => undefined);
    case 'status-infinite':
    case 'status-negative':
    case 'status-2-to-64':
    case 'accepted-40-hex-digits': {
      send({ call: 'accept', offered: '0x100000000' });
      const status = { 'status-infinite': '1e400', 'status-negative': '-1', 'status-2-to-64': '18446744073709551616' };
      awaiting = (a) => {
        const accepted = mode === 'accepted-40-hex-digits' ? `"0x${'f'.repeat(40)}"` : JSON.stringify(a.features);
        write(
          `{"id":${m.id},"ok":true,"offered":"0x100000000","accepted":${accepted},"features_ok":true,"status":${status[mode] ?? 15}}\n`,
        );
      };
      return undefined;
    }
    case 'written-too-long':
      return send({ id: m.id, ok: true, used: true, length: 10, written: '00'.repeat(12) });
    case 'length-beyond-writable':
      return send({ id: m.id, ok: true, used: true, length: 4096, written: '00'.repeat(10) });
    case 'wrong-id':
      return send({ id: m.id + 100, ok: true, config: config() });
    case 'duplicate-reply':
      send({ id: m.id, ok: true, config: config() });
      return send({ id: m.id, ok: true, config: config() });
    case 'call-not-allowed':
      return send({ call: 'read_config' });
    case 'call-flood': {
      const again = () => {
        send({ call: 'read_config' });
        awaiting = again;
      };
      return again();
    }
    case 'request-flood': {
      // STATE of the first block, over and over.
      const request = Buffer.alloc(24);
      request.writeUInt16LE(3, 0);
      request.writeBigUInt64LE(BigInt(setup.addr), 8);
      request.writeUInt16LE(1, 16);
      const again = () => {
        send({ call: 'request', bytes: hex(request) });
        awaiting = again;
      };
      return again();
    }
    case 'stderr-flood':
      return flood(process.stderr, BIG, 0x65, () => {
        process.stderr.write('\nthe last words on stderr\n');
        send({ id: m.id, ok: false, error: 'the toy device jammed after a flood on stderr' });
      });
    case 'hello-changes':
    case 'huge-multiplier':
    case 'exit-on-close':
      return process.exit(3);
    case 'closes-output':
      fs.closeSync(1);
      return sleepForever();
    case 'partial-line':
      return write(`{"id":${m.id},"ok":tr`);
    case 'ignores-sigterm':
      process.on('SIGTERM', () => record('ignored SIGTERM'));
      process.stdin.removeAllListeners('end');
      return sleepForever();
    case 'grandchild-holds-output':
      return process.exit(0);
    case 'killed-by-signal':
      return process.kill(process.pid, 'SIGKILL');
    case 'silent':
      return undefined;
    default:
      return serve(m);
  }
}

/** Mode `mix`: the n-th reply (over all starts) is mutated as the plan says. */
function mutate(m, reply) {
  const kind = plan.length > 0 ? plan[(starts * 7919 + replies++) % plan.length] : 'none';
  if (kind === 'none') return send(reply);
  record(`mutate ${setup ? setup.node_id : -1} ${kind}`);
  switch (kind) {
    case 'malformed':
      return write(`${JSON.stringify(reply).slice(0, -1)},}\n`);
    case 'non-object':
      return write('"ok"\n');
    case 'unknown-shape':
      return send({ reply: reply.id });
    case 'wrong-id':
      return send({ ...reply, id: reply.id + 1 });
    case 'ok-as-text':
      return send({ ...reply, ok: 'true' });
    case 'id-negative':
      return send({ ...reply, id: -1 });
    case 'invalid-utf8':
      write(JSON.stringify(reply).slice(0, -1));
      write(Buffer.from([0x2c, 0x22, 0x78, 0x22, 0x3a, 0x22, 0xff, 0x22]));
      return write('}\n');
    case 'exit':
      return process.exit(4);
  }
  return send(reply);
}

const victim = (m) => setup !== undefined && setup.node_id === 1 && m.op === (TRIGGER[mode] ?? 'read_config');

const CALLS = ['initialise', 'start', 'settle', 'shutdown'];

function handle(m) {
  if (m.op === 'open_device' || m.op === 'open_driver') setup = m.setup;
  if (mode === 'mix' && !CALLS.includes(m.op)) {
    let reply;
    capture = (message) => (reply = message);
    try {
      serve(m);
    } finally {
      capture = undefined;
    }
    return mutate(m, reply);
  }
  // Slower than vmemct's base timeout: only the hello's multiplier lets this reply count.
  if (mode === 'huge-multiplier' && m.op === 'read_config' && !victim(m)) return void setTimeout(() => serve(m), 1_200);
  return victim(m) ? misbehave(m) : serve(m);
}

if (mode === 'exits-before-hello') {
  process.stderr.write('cannot open /dev/toy-mem: no such device\n');
  process.exit(1);
}
// A reply before any command goes out with the hello, in one write, so it arrives before vmemct sends anything.
if (mode === 'reply-before-command' && starts === 1)
  write(`${JSON.stringify(hello)}\n${JSON.stringify({ id: 1, ok: true })}\n`);
else if (mode !== 'no-hello') send(hello);

let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (text) => {
  pending += text;
  let newline;
  while ((newline = pending.indexOf('\n')) >= 0) {
    const line = pending.slice(0, newline);
    pending = pending.slice(newline + 1);
    if (line.trim() === '') continue;
    const m = JSON.parse(line);
    if (m.answer !== undefined) {
      const next = awaiting;
      awaiting = undefined;
      if (next) next(m);
    } else handle(m);
  }
});
process.stdin.on('end', () => process.exit(0));
