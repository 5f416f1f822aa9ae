/**
 * Device vectors inside a live guest (`--adapter ssh-guest --target device`): the guest is built
 * and booted under QEMU 7.2 (TCG), the in-guest agent takes the virtio-mem function, and the
 * suite's virtio-pci driver runs the device corpus through it. The same corpus runs through
 * `--adapter qemu` over qtest, and the session transcripts of every vector both can run must be
 * identical; the vectors the guest path cannot run are listed with the reason.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createQemuAdapter, qemuConfigurationRefusal } from '../../qemu/src/qemu-adapter';
import { connectGuestDeviceAdapter } from '../src/guest-device-connect';
import { buildGuest } from '../src/guest-build';
import { GuestVm } from '../src/guest-vm';
import {
  GuestPerConfigurationAdapter,
  bootGuestDevice,
  configurationKey,
  configurationOf,
} from '../src/guest-device-groups';
import { evaluateSetup } from '../../../conformance/src/runner/setup';
import { loadVectors } from '../../../conformance/src/loader/load';
import { RecordingAdapter, compareTranscripts } from '../../../conformance/src/differential/transcript';
import { runVectors } from '../../../conformance/src/runner/run';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');
const OUT = path.join(ROOT, 'test-output', 'guest');
const GUEST_DIR = path.join(OUT, 'image');
const EXPECTATIONS = path.join(ROOT, 'conformance', 'expectations', 'qemu-7.2.yaml');

let vm: GuestVm;
const timings: string[] = [];

function deviceVectors() {
  const loaded = loadVectors([path.join(ROOT, 'conformance', 'vectors', 'device')]);
  if (loaded.problems.length > 0) throw new Error(loaded.problems.map((p) => p.reason).join('; '));
  return loaded.vectors;
}

function guestArgs(): string[] {
  const s = vm.state;
  return [
    '--adapter',
    'ssh-guest',
    '--target',
    'device',
    '--ssh',
    `${s.sshUser}@${s.sshHost}:${s.sshPort}`,
    '--ssh-key',
    s.sshKey,
    '--ssh-known-hosts',
    s.knownHosts,
    '--qmp',
    s.qmpSocket,
  ];
}

function cli(
  args: readonly string[],
  timeoutMs = 300_000,
): Promise<{ status: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr, ms: Date.now() - started });
    });
  });
}

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  await buildGuest({ dir: GUEST_DIR, log: () => undefined });
  const t = Date.now();
  vm = await GuestVm.boot({ dir: GUEST_DIR, runDir: path.join(OUT, 'run-device'), detached: false });
  timings.push(`boot to SSH: ${((Date.now() - t) / 1000).toFixed(1)} s`);
}, 600_000);

afterAll(async () => {
  await vm?.stop();
  fs.writeFileSync(path.join(OUT, 'device-timings.txt'), `${timings.join('\n')}\n`);
  // eslint-disable-next-line no-console
  console.log(timings.join('\n'));
});

describe('device vectors through the in-guest agent', () => {
  it('passes the device corpus under qemu-7.2.yaml (exit 0)', async () => {
    const json = path.join(OUT, 'device-corpus.json');
    const r = await cli(['run', ...guestArgs(), '--expectations', EXPECTATIONS, '--json', json]);
    timings.push(`device corpus through the agent (one boot, above): ${(r.ms / 1000).toFixed(1)} s`);
    expect(r.stderr).not.toMatch(/internal error/);
    const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as {
      adapter: { implementation: string };
      results: { id: string; verdict: string; status: 'expected' | 'unexpected' }[];
    };
    expect(doc.adapter.implementation).toMatch(/^QEMU 7\.2\.\d+ via guest agent$/);
    // The corpus passes under QEMU 7.2's expectation file: entries of vectors the guest path cannot
    // run are not observed, neither met nor contradicted.
    expect(doc.results.filter((x) => x.status === 'unexpected')).toEqual([]);
    expect(r.status).toBe(0);
    expect(doc.results.filter((x) => x.verdict === 'pass').length).toBeGreaterThan(80);
  });

  it('leaves the same session transcripts as --adapter qemu over qtest for every vector both can run', async () => {
    const vectors = deviceVectors();
    // config_generation counts the device's whole life (QEMU bumps it with each notification),
    // and the two devices have lived different lives: left out on both sides.
    const omit = { omit: ['readConfigGeneration'] } as const;
    const qtest = new RecordingAdapter(createQemuAdapter(), omit);
    const s = vm.state;
    const guest = new RecordingAdapter(
      await connectGuestDeviceAdapter({
        ssh: { user: s.sshUser, host: s.sshHost, port: s.sshPort, key: s.sshKey, knownHosts: s.knownHosts },
        qmp: s.qmpSocket,
      }),
      omit,
    );
    const differences: string[] = [];
    const guestCannot: string[] = [];
    let compared = 0;
    const started = Date.now();
    try {
      for (const vector of vectors) {
        qtest.beginVector(vector.id);
        guest.beginVector(vector.id);
        const onGuest = (await runVectors(guest, [vector], vectors, {})).results[0]!;
        const onQtest = (await runVectors(qtest, [vector], vectors, {})).results[0]!;
        if (onQtest.verdict === 'unsupported') continue;
        if (onGuest.verdict === 'unsupported') {
          guestCannot.push(`${vector.id}: ${onGuest.findings[0]?.message ?? ''}`);
          continue;
        }
        compared++;
        const diff = compareTranscripts(guest.transcripts.get(vector.id)!, qtest.transcripts.get(vector.id)!);
        if (diff)
          differences.push(
            `${vector.id} call ${diff.index}: guest ${JSON.stringify(diff.left)} / qtest ${JSON.stringify(diff.right)}`,
          );
        else if (onGuest.verdict !== onQtest.verdict)
          differences.push(`${vector.id}: verdict ${onGuest.verdict} in the guest, ${onQtest.verdict} over qtest`);
      }
    } finally {
      await guest.dispose();
      await qtest.dispose();
    }
    timings.push(`transcript comparison (both paths): ${((Date.now() - started) / 1000).toFixed(1)} s`);
    timings.push(`compared ${compared} vectors; the guest path cannot run ${guestCannot.length}:`);
    timings.push(...guestCannot.map((l) => `  ${l}`));
    expect(differences).toEqual([]);
    expect(compared).toBeGreaterThan(150);
  });

  it('runs vectors needing another device configuration in one guest booted with it, with qtest transcripts', async () => {
    // The unplugged-inaccessible vectors: one other configuration, one extra boot.
    const vectors = deviceVectors();
    const selected = vectors
      .filter((v) => {
        const e = evaluateSetup(v);
        return (
          e.ok && configurationOf(e.setup).unpluggedInaccessible && qemuConfigurationRefusal(e.setup) === undefined
        );
      })
      .slice(0, 3);
    const keys = new Set(
      selected.map((v) => {
        const e = evaluateSetup(v);
        return e.ok ? configurationKey(configurationOf(e.setup)) : e.reason;
      }),
    );
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/unplugged-inaccessible$/);
    const omit = { omit: ['readConfigGeneration'] } as const;
    const s = vm.state;
    const first = await connectGuestDeviceAdapter({
      ssh: { user: s.sshUser, host: s.sshHost, port: s.sshPort, key: s.sshKey, knownHosts: s.knownHosts },
      qmp: s.qmpSocket,
    });
    // Alone, the first guest cannot run them: its device lacks the configuration.
    const alone = await runVectors(first, selected.slice(0, 1), vectors, {});
    expect(alone.results[0]!.verdict).toBe('unsupported');
    expect(alone.results[0]!.findings[0]?.message).toMatch(/--unplugged-inaccessible/);
    const grouped = new GuestPerConfigurationAdapter(
      { adapter: first, stop: () => first.dispose() },
      (c) => bootGuestDevice({ dir: GUEST_DIR, runDir: OUT }, 'run-other', c),
      qemuConfigurationRefusal,
    );
    const guest = new RecordingAdapter(grouped, omit);
    const qtest = new RecordingAdapter(createQemuAdapter(), omit);
    const differences: string[] = [];
    const started = Date.now();
    let ran = 0;
    try {
      for (const vector of selected) {
        guest.beginVector(vector.id);
        qtest.beginVector(vector.id);
        const onGuest = (await runVectors(guest, [vector], vectors, {})).results[0]!;
        const onQtest = (await runVectors(qtest, [vector], vectors, {})).results[0]!;
        // Runs now (pass, or its qemu-7.2.yaml verdict): never unsupported, and as over qtest.
        expect([vector.id, onGuest.verdict]).toEqual([vector.id, onQtest.verdict]);
        expect(onGuest.verdict).not.toBe('unsupported');
        ran++;
        const diff = compareTranscripts(guest.transcripts.get(vector.id)!, qtest.transcripts.get(vector.id)!);
        if (diff)
          differences.push(
            `${vector.id} call ${diff.index}: guest ${JSON.stringify(diff.left)} / qtest ${JSON.stringify(diff.right)}`,
          );
      }
    } finally {
      await guest.dispose();
      await qtest.dispose();
    }
    timings.push(
      `${ran} unplugged-inaccessible vectors in a guest booted for them: ${((Date.now() - started) / 1000).toFixed(1)} s, ${grouped.boots} boot`,
    );
    expect(grouped.boots).toBe(1);
    expect(ran).toBe(selected.length);
    expect(ran).toBeGreaterThanOrEqual(3);
    expect(differences).toEqual([]);
  });
});
