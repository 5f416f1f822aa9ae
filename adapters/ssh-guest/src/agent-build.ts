/**
 * Compiles the in-guest agent (adapters/ssh-guest/agent) with the host's gcc as one static
 * executable, for `vmemct guest build` to pack into the initramfs, and for the tests that run it
 * on the host with `--root`.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findOnPath } from '../../qemu-platform/src/index';

/** The agent's source files, in the folder {@link agentSourceDir} finds. */
export const AGENT_SOURCES = ['vmemct-agent.c', 'agent-places.c', 'agent.h'] as const;

/** What {@link compileAgent} made, or why it could not. */
export type AgentBuildResult =
  | { readonly ok: true; readonly path: string; readonly sourceSha256: string }
  /** `packages`: the Debian packages that would fix it, when that is the reason. */
  | { readonly ok: false; readonly problem: string; readonly packages: readonly string[] };

/** The folder holding the agent's sources (from src/ or from the compiled dist/), if found. */
export function agentSourceDir(from = __dirname): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'adapters', 'ssh-guest', 'agent');
    if (fs.existsSync(path.join(candidate, AGENT_SOURCES[0]))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** SHA-256 of the agent's sources, in {@link AGENT_SOURCES} order (records which agent a guest has). */
export function agentSourceHash(sourceDir: string): string {
  const hash = createHash('sha256');
  for (const file of AGENT_SOURCES) {
    hash.update(`${file}\0`);
    hash.update(fs.readFileSync(path.join(sourceDir, file)));
  }
  return hash.digest('hex');
}

/** Compiles the agent into `out` (`gcc -static -O2`); never throws. */
export function compileAgent(out: string, sourceDir = agentSourceDir()): AgentBuildResult {
  if (!sourceDir)
    return { ok: false, problem: 'the agent sources (adapters/ssh-guest/agent) are not installed', packages: [] };
  const gcc = findOnPath('gcc');
  if (!gcc)
    return {
      ok: false,
      problem: 'compiling the guest agent needs gcc and a static C library',
      packages: ['gcc', 'libc6-dev'],
    };
  const sources = AGENT_SOURCES.filter((f) => f.endsWith('.c')).map((f) => path.join(sourceDir, f));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const r = spawnSync(gcc, ['-static', '-O2', '-std=c11', '-Wall', '-Wextra', '-Werror', '-o', out, ...sources], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.error || r.status !== 0) {
    const said = (r.stderr || r.error?.message || `status ${r.status}`).trim();
    const libc = /stdio\.h|cannot find -lc|No such file or directory/.test(said);
    return {
      ok: false,
      problem: `gcc could not compile the guest agent: ${said.split('\n').slice(-3).join(' / ')}`,
      packages: libc ? ['libc6-dev'] : [],
    };
  }
  return { ok: true, path: out, sourceSha256: agentSourceHash(sourceDir) };
}
