/**
 * A host-made BUSY for QEMU's virtio-mem: QEMU answers PLUG, UNPLUG and UNPLUG ALL with BUSY
 * while a migration is active (`virtio_mem_is_busy()`), so the host makes the device busy by
 * starting an outgoing migration that never ends and releases it by cancelling that migration.
 *
 * The migration goes to a sink this adapter owns: a unix socket in QEMU's private folder that
 * accepts the connection and never reads from it (no shell, no `exec:`), with the migration
 * bandwidth throttled, so the migration stays `active` until `migrate_cancel`.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { AdapterError, AdapterTimeoutError } from '../../core/src/contract';
import { sleep } from '../../core/src/sleep';
import type { QmpClient } from './qmp';

/** Migration bandwidth while busy, in bytes per second: small, so the migration stays active. */
const THROTTLE_BYTES_PER_SECOND = 1024;
/** How often `query-migrate` is polled while waiting for a state. */
const POLL_MS = 5;

/** States of `query-migrate` after which the migration is over. */
const ENDED = new Set(['completed', 'failed', 'cancelled']);

/** The outgoing migration that holds one QEMU's virtio-mem device busy (the `qemu` and `ssh-guest` adapters' `host-busy`). */
export class MigrationBusy {
  private sink: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();

  constructor(
    private readonly qmp: Pick<QmpClient, 'execute'>,
    /** QEMU's private folder: the sink's socket is made there. */
    private readonly folder: string,
    /** Bound on each wait for a migration state, in milliseconds. */
    private readonly boundMs: number,
  ) {}

  /** Whether the migration was started and not yet cancelled. */
  get active(): boolean {
    return this.sink !== undefined;
  }

  /** Starts the migration and resolves once QEMU reports it `active`. Nothing happens when already busy. */
  async start(): Promise<void> {
    if (this.sink) return;
    const socketPath = path.join(this.folder, 'migration-sink.sock');
    this.sink = await listen(socketPath, (socket) => {
      // Never read: QEMU's writes stall once the socket buffers fill, and the migration stays active.
      this.connections.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.connections.delete(socket));
    });
    await this.qmp.execute('migrate-set-parameters', { 'max-bandwidth': THROTTLE_BYTES_PER_SECOND });
    await this.qmp.execute('migrate', { uri: `unix:${socketPath}` });
    const status = await this.waitFor((s) => s === 'active' || ENDED.has(s), 'active');
    if (status !== 'active') {
      this.closeSink();
      throw new AdapterError(`the migration that makes the device busy ended at once (query-migrate: ${status})`);
    }
  }

  /** Cancels the migration, resolves once QEMU reports it `cancelled`, and closes the sink. Nothing happens when not busy. */
  async stop(): Promise<void> {
    if (!this.sink) return;
    try {
      await this.qmp.execute('migrate_cancel');
      const status = await this.waitFor((s) => ENDED.has(s), 'cancelled');
      if (status !== 'cancelled')
        throw new AdapterError(`the migration that made the device busy ended as '${status}', not cancelled`);
    } finally {
      this.closeSink();
    }
  }

  /** Closes the sink and every connection to it (the migration, if still running, then fails). */
  closeSink(): void {
    for (const socket of this.connections) socket.destroy();
    this.connections.clear();
    this.sink?.close();
    this.sink = undefined;
  }

  /** Polls `query-migrate` until `done(status)`; the last status, or AdapterTimeoutError after the bound. */
  private async waitFor(done: (status: string) => boolean, wanted: string): Promise<string> {
    const deadline = Date.now() + this.boundMs;
    for (;;) {
      const info = (await this.qmp.execute('query-migrate')) as { status?: string };
      const status = info.status ?? 'none';
      if (done(status)) return status;
      if (Date.now() >= deadline)
        throw new AdapterTimeoutError(
          `the migration did not become ${wanted} within ${this.boundMs} ms (query-migrate: ${status})`,
        );
      await sleep(POLL_MS);
    }
  }
}

/** A unix-socket server at `socketPath` that accepts connections without reading them. */
function listen(socketPath: string, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    fs.rmSync(socketPath, { force: true });
    const server = net.createServer({ pauseOnConnect: true }, onConnection);
    server.once('error', (e) => reject(new AdapterError(`the migration sink cannot listen: ${e.message}`)));
    server.listen(socketPath, () => resolve(server));
  });
}
