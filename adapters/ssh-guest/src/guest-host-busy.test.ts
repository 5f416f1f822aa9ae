import * as fs from 'node:fs';
import * as net from 'node:net';
import { GuestHostBusy } from './guest-host-busy';

/** A QMP that acts like QEMU's migration: `migrate` to a unix socket connects to it and is active until cancelled. */
class FakeMigrationQmp {
  readonly commands: { command: string; args?: Record<string, unknown> }[] = [];
  status = 'none';
  sinkPath: string | undefined;
  private connection: net.Socket | undefined;
  connected = false;

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    this.commands.push({ command, args });
    if (command === 'migrate') {
      this.sinkPath = String(args!.uri).replace(/^unix:/, '');
      this.connection = net.connect(this.sinkPath);
      this.connection.on('error', () => undefined);
      await new Promise<void>((resolve) => this.connection!.once('connect', () => resolve()));
      this.connected = true;
      this.status = 'setup';
      setTimeout(() => (this.status = this.status === 'setup' ? 'active' : this.status), 20);
    }
    if (command === 'migrate_cancel') {
      this.status = 'cancelling';
      setTimeout(() => {
        this.connection?.destroy();
        this.status = 'cancelled';
      }, 20);
    }
    if (command === 'query-migrate') return this.status === 'none' ? {} : { status: this.status };
    return {};
  }
}

const names = (qmp: FakeMigrationQmp) => qmp.commands.map((c) => c.command).filter((c) => c !== 'query-migrate');

describe('GuestHostBusy (host-busy through a migration)', () => {
  test('busy: a throttled migration into a sink of ours, resolved once active; released: cancelled, waited for', async () => {
    const qmp = new FakeMigrationQmp();
    const host = new GuestHostBusy(qmp, 5000);
    expect(host.busy).toBe(false);
    await host.set(true);
    expect(qmp.status).toBe('active');
    expect(qmp.connected).toBe(true);
    expect(host.busy).toBe(true);
    expect(names(qmp)).toEqual(['migrate-set-parameters', 'migrate']);
    expect(qmp.commands[0]!.args).toEqual({ 'max-bandwidth': 1024 });
    expect(String(qmp.commands[1]!.args!.uri)).toMatch(/^unix:\/.*vmemct-host-busy-.*\/migration-sink\.sock$/);
    await host.set(true); // already busy: nothing more
    expect(names(qmp)).toEqual(['migrate-set-parameters', 'migrate']);
    await host.set(false);
    expect(qmp.status).toBe('cancelled');
    expect(host.busy).toBe(false);
    expect(names(qmp)).toEqual(['migrate-set-parameters', 'migrate', 'migrate_cancel']);
    await host.set(false); // not busy: nothing
    expect(names(qmp)).toHaveLength(3);
    const folder = qmp.sinkPath!.replace(/\/migration-sink\.sock$/, '');
    expect(fs.existsSync(folder)).toBe(true);
    await host.dispose();
    expect(fs.existsSync(folder)).toBe(false);
  });

  test('dispose releases a device left busy', async () => {
    const qmp = new FakeMigrationQmp();
    const host = new GuestHostBusy(qmp, 5000);
    await host.set(true);
    await host.dispose();
    expect(names(qmp)).toContain('migrate_cancel');
    expect(qmp.status).toBe('cancelled');
  });

  test('a migration that ends at once is an error, not a busy device', async () => {
    const qmp = new FakeMigrationQmp();
    qmp.execute = async function (command, args) {
      this.commands.push({ command, args });
      return command === 'query-migrate' ? { status: 'failed' } : {};
    };
    const host = new GuestHostBusy(qmp, 5000);
    await expect(host.set(true)).rejects.toThrow(/ended at once \(query-migrate: failed\)/);
    expect(host.busy).toBe(false);
    await host.dispose();
  });
});
