/**
 * `vmemct serve-vhost-user`: a vhost-user back-end whose device is the reference model.
 *
 * The server listens on a unix socket; each connection is one device: a {@link BackendConnection}
 * (the generic message handler) serving a {@link ModelVhostDevice} (a fresh {@link ModelHost} built
 * from the server's set-up, or from the connection's VMEMCT SETUP) with vmemct's control
 * extension ({@link VmemctControl}). Requests arrive on vring 0 and are answered by the model;
 * configuration changes are announced with BACKEND_CONFIG_CHANGE_MSG on the back-end channel.
 *
 * Malformed input never ends the server: a framing error or a peer that hangs up mid-message
 * ends that connection only.
 */
import * as fs from 'node:fs';
import { DeviceParamsError, DeviceProfile, HostSetupResult, ModelHost, SPEC_PROFILE } from '../../../model/src/index';
import { DeviceSetup, formatSize } from '../../../spec/src/index';
import { MessageChannel } from '../../vhost-user/src/channel';
import { VhostNative, WatchHandle, vhostNative } from '../../vhost-user/src/native';
import { BackendConnection, SEND_TIMEOUT_MS } from './connection';
import { ControlServer, MAX_SETUP_BLOCKS, VmemctControl } from './control-extension';
import { ModelVhostDevice } from './model-device';

/**
 * Connections served at once. Each costs a few fds and at most {@link MAX_SETUP_BLOCKS} bits of
 * block bitmap (512 KiB) plus its copies, so 64 bound the server to tens of MiB; QEMU and test
 * harnesses use one or a few. Further connections are closed at once, with a log line.
 */
export const MAX_CONNECTIONS = 64;

/** Options of {@link VhostUserBackend}. */
export interface BackendOptions {
  readonly socketPath: string;
  /** The device every new connection gets, unless it sends a VMEMCT SETUP. */
  readonly setup: DeviceSetup;
  readonly profile?: DeviceProfile;
  /** One line per event worth knowing (connections, malformed input, ends). */
  readonly log?: (line: string) => void;
  readonly native?: VhostNative;
}

/** The server is already running at that path, or the path cannot be used. */
export class BackendStartError extends Error {
  override readonly name = 'BackendStartError';
}

/** A vhost-user back-end serving the model, one device per connection. */
export class VhostUserBackend implements ControlServer {
  private listenFd = -1;
  private listenWatch?: WatchHandle;
  /** Open connections and their control extensions. */
  private readonly connections = new Map<BackendConnection<ModelVhostDevice>, VmemctControl>();
  private nextId = 1;
  private setup: DeviceSetup;
  readonly profile: DeviceProfile;
  private readonly log: (line: string) => void;
  private readonly native: VhostNative;
  private stopped = false;

  private constructor(private readonly options: BackendOptions) {
    this.native = options.native ?? vhostNative();
    this.profile = options.profile ?? SPEC_PROFILE;
    this.setup = options.setup;
    this.log = options.log ?? (() => undefined);
    // Building the default device once checks the set-up before any client connects.
    this.defaultHost();
  }

  /**
   * Starts listening. A stale socket file (nobody accepting) is replaced.
   * @throws BackendStartError when another server answers on the path or it cannot be bound;
   *   DeviceParamsError when the set-up cannot be modelled; NativeHelperMissingError.
   */
  static async start(options: BackendOptions): Promise<VhostUserBackend> {
    const backend = new VhostUserBackend(options);
    backend.bind();
    return backend;
  }

  /** The socket path. */
  get socketPath(): string {
    return this.options.socketPath;
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** The implementation name reported by VMEMCT INFO. */
  get implementation(): string {
    return `vmemct serve-vhost-user (model:${this.profile.name})`;
  }

  /** The set-up new connections get. */
  defaultSetup(): DeviceSetup {
    return this.setup;
  }

  /** A device built from `setup` with the server's profile. */
  newHost(setup: DeviceSetup): HostSetupResult {
    return ModelHost.create(setup, this.profile);
  }

  /**
   * A host resize of the whole back-end (vmemct vhost-user-ctl): the default set-up for new
   * connections and every connection's device, each announced to its front-end.
   */
  async resizeAll(requested: bigint): Promise<{ ok: boolean; text: string }> {
    const trial = this.defaultHost().resize(requested);
    if (trial.kind === 'refused') return { ok: false, text: trial.reason };
    this.setup = { ...this.setup, requested_size: requested };
    const notes: string[] = [];
    // Control clients (no SET_OWNER) have no device a front-end uses.
    for (const [connection, control] of this.owned()) {
      const r = await control.hostResize(requested);
      notes.push(`connection ${connection.id}: ${r.ok ? 'applied' : `refused (${r.text})`}`);
    }
    const text = [`requested_size ${formatSize(requested)} for new connections`, ...notes].join('; ');
    this.log(`resize: ${text}`);
    return { ok: true, text };
  }

  /** JSON-ready description of the back-end (VMEMCT STATUS). */
  status(): unknown {
    const s = this.setup;
    return {
      implementation: this.implementation,
      socket: this.socketPath,
      setup: {
        block_size: s.block_size.toString(),
        region_size: s.region_size.toString(),
        addr: s.addr.toString(),
        requested_size: s.requested_size.toString(),
        node_id: s.node_id,
      },
      connections: this.owned().map(([, control]) => control.describe()),
    };
  }

  /** Stops accepting, ends every connection and removes the socket file. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.listenWatch) this.native.unwatch(this.listenWatch);
    if (this.listenFd >= 0) this.native.close(this.listenFd);
    this.listenFd = -1;
    removeStale(this.options.socketPath);
    await Promise.all([...this.connections.keys()].map((c) => c.end('server stopping')));
  }

  /** A host with the default set-up. @throws DeviceParamsError when the model cannot build it. */
  private defaultHost(): ModelHost {
    const built = this.newHost(this.setup);
    if (built.kind === 'refused') throw new DeviceParamsError(built.field, built.reason);
    return built.host;
  }

  private owned(): [BackendConnection<ModelVhostDevice>, VmemctControl][] {
    return [...this.connections].filter(([c]) => c.isOwned);
  }

  private bind(): void {
    const path = this.options.socketPath;
    try {
      const probe = this.native.connect(path);
      this.native.close(probe);
      throw new BackendStartError(`${path}: another back-end is already serving this socket`);
    } catch (e) {
      if (e instanceof BackendStartError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ECONNREFUSED') removeStale(path);
      else if (code !== 'ENOENT') throw new BackendStartError(`${path}: ${(e as Error).message}`);
    }
    try {
      this.listenFd = this.native.listen(path, 64);
    } catch (e) {
      throw new BackendStartError(`${path}: cannot listen (${(e as Error).message})`);
    }
    this.listenWatch = this.native.watch(this.listenFd, () => this.acceptAll());
  }

  private acceptAll(): void {
    for (;;) {
      let fd: number;
      try {
        fd = this.native.accept(this.listenFd);
      } catch (e) {
        // Out of fds (EMFILE) and the like: pause accepting briefly rather than spin on a readable listener.
        this.log(`accept failed: ${(e as Error).message}; accepting again in 200 ms`);
        this.pauseAccepting(200);
        return;
      }
      if (fd < 0) return;
      if (this.connections.size >= MAX_CONNECTIONS) {
        this.native.close(fd);
        this.log(`connection refused: all ${MAX_CONNECTIONS} connections are in use`);
        continue;
      }
      this.open(fd);
    }
  }

  /** Serves a new connection: the generic handler, the model device and the control extension. */
  private open(fd: number): void {
    const id = this.nextId++;
    const channel = new MessageChannel(this.native, fd, SEND_TIMEOUT_MS);
    const connection = new BackendConnection(
      id,
      channel,
      this.native,
      (memory, problem) => new ModelVhostDevice(this.defaultHost(), memory, problem),
      this.log,
    );
    const control = new VmemctControl(this, connection);
    connection.extend(control);
    this.connections.set(connection, control);
    this.log(`connection ${id}: opened`);
    void connection.serve().finally(() => {
      this.connections.delete(connection);
    });
  }

  private pauseAccepting(ms: number): void {
    if (!this.listenWatch || this.stopped) return;
    this.native.unwatch(this.listenWatch);
    this.listenWatch = undefined;
    setTimeout(() => {
      if (this.stopped || this.listenFd < 0) return;
      this.listenWatch = this.native.watch(this.listenFd, () => this.acceptAll());
      this.acceptAll();
    }, ms).unref();
  }
}

/** Removes a socket file nobody serves; any other kind of file is left alone. */
function removeStale(path: string): void {
  try {
    if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
  } catch {
    /* gone already */
  }
}
