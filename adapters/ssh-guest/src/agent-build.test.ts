import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AGENT_SOURCES, agentSourceDir, agentSourceHash, compileAgent } from './agent-build';
import { GUEST_MANIFEST_FORMAT, GuestBuildError, readManifest } from './guest-build';

const SOURCES = path.resolve(__dirname, '..', 'agent');

describe('building the guest agent', () => {
  let work: string;
  beforeEach(() => (work = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-agent-build-'))));
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  it('finds the sources from src/ and from a compiled dist/ folder, and nothing elsewhere', () => {
    expect(agentSourceDir(__dirname)).toBe(SOURCES);
    const root = path.resolve(__dirname, '..', '..', '..');
    expect(agentSourceDir(path.join(root, 'dist', 'adapters', 'ssh-guest', 'src'))).toBe(SOURCES);
    expect(agentSourceDir(work)).toBeUndefined();
  });

  it('hashes every source file, so any change to one is seen', () => {
    const copy = path.join(work, 'agent');
    fs.mkdirSync(copy);
    for (const f of AGENT_SOURCES) fs.copyFileSync(path.join(SOURCES, f), path.join(copy, f));
    const before = agentSourceHash(copy);
    expect(before).toBe(agentSourceHash(SOURCES));
    for (const f of AGENT_SOURCES) {
      fs.appendFileSync(path.join(copy, f), '\n');
      expect([f, agentSourceHash(copy) === before]).toEqual([f, false]);
      fs.copyFileSync(path.join(SOURCES, f), path.join(copy, f));
    }
  });

  it('names the packages to install when there is no gcc', () => {
    const saved = process.env.PATH;
    process.env.PATH = work;
    try {
      expect(compileAgent(path.join(work, 'agent'))).toEqual({
        ok: false,
        problem: 'compiling the guest agent needs gcc and a static C library',
        packages: ['gcc', 'libc6-dev'],
      });
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe('a guest built without the agent, or with another one', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-guest-'));
    for (const f of ['vmlinuz', 'initrd.gz', 'id_ed25519']) fs.writeFileSync(path.join(dir, f), '');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const manifest = (fields: Record<string, unknown>): void =>
    fs.writeFileSync(
      path.join(dir, 'guest.json'),
      JSON.stringify({
        kernel: path.join(dir, 'vmlinuz'),
        initrd: path.join(dir, 'initrd.gz'),
        sshKey: path.join(dir, 'id_ed25519'),
        ...fields,
      }),
    );

  it('refuses an older manifest format with "build again"', () => {
    manifest({ format: 'vmemct-guest/1' });
    expect(() => readManifest(dir)).toThrow(GuestBuildError);
    expect(() => readManifest(dir)).toThrow(
      /format is 'vmemct-guest\/1', not 'vmemct-guest\/2' \(a guest built by an older vmemct, without the agent\); run `vmemct guest build --dir .*` again/,
    );
  });

  it('refuses an agent compiled from other sources, and takes the current one', () => {
    manifest({ format: GUEST_MANIFEST_FORMAT, agent: { guestPath: '/sbin/vmemct-agent', sourceSha256: '00' } });
    expect(() => readManifest(dir)).toThrow(/its agent was compiled from other sources than .*agent/);
    manifest({
      format: GUEST_MANIFEST_FORMAT,
      agent: { guestPath: '/sbin/vmemct-agent', sourceSha256: agentSourceHash(SOURCES) },
    });
    expect(readManifest(dir).agent.guestPath).toBe('/sbin/vmemct-agent');
  });
});
