/**
 * vmemct's control extension ({@link ProtocolFeature.VMEMCT_CONTROL}): the host side of a
 * conformance run over vhost-user. A codec over the connection's {@link ModelHost}: each message
 * is decoded (layouts in the vhost-user protocol), becomes one host call, and the host's result
 * union is encoded as a {@link VmemctReply} (OK, REFUSED with the reason, BAD_MESSAGE).
 *
 * On a connection that sent SET_OWNER the messages act on its device; on one without an owner (a
 * control client such as `vmemct vhost-user-ctl`) RESIZE and STATUS act on the whole back-end.
 */
import type { HostSetupResult } from '../../../model/src/index';
import { DeviceSetup, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../spec/src/index';
import {
  Message,
  ProtocolFeature,
  U64Layout,
  VmemctAccessLayout,
  VmemctRequest,
  VmemctStatus,
  decodeStruct,
  decodeVmemctSetup,
  requestName,
  vmemctReplyPayload,
} from '../../vhost-user/src/protocol';
import type { BackendConnection } from './connection';
import type { VendorExtension } from './device';
import type { HandlerReply } from './messages';
import type { ModelVhostDevice } from './model-device';

/** What the extension needs from the server (the whole back-end). */
export interface ControlServer {
  /** The implementation name (VMEMCT INFO). */
  readonly implementation: string;
  /** JSON-ready description of the back-end (VMEMCT STATUS on a control client). */
  status(): unknown;
  /** A host resize of every device in use and of the set-up new connections get. */
  resizeAll(requested: bigint): Promise<{ readonly ok: boolean; readonly text: string }>;
  /** A device built from a set-up record, with the server's profile. */
  newHost(setup: DeviceSetup): HostSetupResult;
}

const VMEMCT_CODES: ReadonlySet<number> = new Set(Object.values(VmemctRequest));

/**
 * The most blocks a VMEMCT SETUP may give a connection's device (2^22: 512 KiB of bitmap, e.g. a
 * 8 TiB region of 2 MiB blocks, 16 GiB of 4 KiB blocks). With at most 64 connections that bounds
 * the bitmaps to 32 MiB and every operation that walks plugged blocks to a few milliseconds
 * whoever plugs what; the corpus's largest device has 131,072 blocks.
 */
export const MAX_SETUP_BLOCKS = 1 << 22;

/** The control extension of one connection. */
export class VmemctControl implements VendorExtension {
  readonly protocolFeature = ProtocolFeature.VMEMCT_CONTROL;

  constructor(
    private readonly server: ControlServer,
    private readonly connection: BackendConnection<ModelVhostDevice>,
  ) {}

  private get device(): ModelVhostDevice {
    return this.connection.device;
  }

  handles(request: number): boolean {
    return VMEMCT_CODES.has(request);
  }

  /** JSON-ready description of this connection's device (VMEMCT STATUS on a connection with an owner). */
  describe(): unknown {
    const c = this.device.host.config();
    const conn = this.connection;
    return {
      id: conn.id,
      owner: conn.isOwned,
      status: this.device.host.readStatus(),
      regions: conn.memory.count,
      plugged_size: c.plugged_size.toString(),
      requested_size: c.requested_size.toString(),
    };
  }

  /** A host resize of this connection's device, announced to its front-end (in turn with its messages). */
  async hostResize(requested: bigint): Promise<{ ok: boolean; text: string }> {
    let result: { ok: boolean; text: string } = { ok: false, text: 'connection ended' };
    await this.connection.serialised(async () => {
      if (this.connection.ended) return;
      const r = this.device.host.resize(requested);
      result = r.kind === 'applied' ? { ok: true, text: 'applied' } : { ok: false, text: r.reason };
      await this.connection.announce();
    });
    return result;
  }

  async handle(m: Message): Promise<HandlerReply> {
    const reply = (status: bigint, text: string): HandlerReply => ({ reply: vmemctReplyPayload(status, text) });
    const bad = (text: string): HandlerReply => {
      this.connection.problem(`${requestName(m.request)}: ${text}`);
      return reply(VmemctStatus.BAD_MESSAGE, text);
    };
    const size = m.payload.length;
    const want = (n: number, what = `${n}`): string | undefined =>
      size === n ? undefined : `payload of ${size} bytes, expected ${what}`;
    // Fds are closed and logged by the generic handler.
    if (m.fds.length) return reply(VmemctStatus.BAD_MESSAGE, `${m.fds.length} unexpected fd(s) closed`);
    const host = this.device.host;
    switch (m.request) {
      case VmemctRequest.INFO:
        return reply(VmemctStatus.OK, this.server.implementation);
      case VmemctRequest.STATUS:
        return reply(VmemctStatus.OK, JSON.stringify(this.connection.isOwned ? this.describe() : this.server.status()));
      case VmemctRequest.SETUP: {
        const decoded = decodeVmemctSetup(m.payload);
        if (!decoded.ok) return bad(decoded.problem);
        const { region_size: regionSize, block_size: blockSize } = decoded.setup;
        if (blockSize > 0n && regionSize / blockSize > BigInt(MAX_SETUP_BLOCKS)) {
          const text = `a region of ${regionSize / blockSize} blocks exceeds the ${MAX_SETUP_BLOCKS} blocks a connection may set up`;
          this.connection.problem(`${requestName(m.request)}: refused: ${text}`);
          return reply(VmemctStatus.REFUSED, text);
        }
        if (host.readStatus() & VIRTIO_CONFIG_S_DRIVER_OK)
          return reply(VmemctStatus.REFUSED, 'the device is running (DRIVER_OK); set it up before the handshake');
        const built = this.server.newHost(decoded.setup);
        if (built.kind === 'refused') return reply(VmemctStatus.REFUSED, built.reason);
        this.device.replace(built.host);
        this.connection.forgetConfigChanges();
        return reply(VmemctStatus.OK, 'set up');
      }
      case VmemctRequest.RESIZE: {
        const problem = want(U64Layout.size);
        if (problem) return bad(problem);
        const requested = decodeStruct(U64Layout, m.payload).value;
        if (!this.connection.isOwned) {
          const r = await this.server.resizeAll(requested);
          return reply(r.ok ? VmemctStatus.OK : VmemctStatus.REFUSED, r.text);
        }
        const r = host.resize(requested);
        if (r.kind === 'refused') return reply(VmemctStatus.REFUSED, r.reason);
        await this.connection.announce();
        return reply(VmemctStatus.OK, 'applied');
      }
      case VmemctRequest.INJECT_BUSY: {
        const problem = want(U64Layout.size);
        if (problem) return bad(problem);
        host.injectBusy(Number(decodeStruct(U64Layout, m.payload).value));
        return reply(VmemctStatus.OK, 'armed');
      }
      case VmemctRequest.HOST_BUSY: {
        const problem = want(U64Layout.size);
        if (problem) return bad(problem);
        const busy = decodeStruct(U64Layout, m.payload).value;
        if (busy > 1n) return bad(`host busy takes 0 or 1 (got ${busy})`);
        host.setHostBusy(busy === 1n);
        return reply(VmemctStatus.OK, busy === 1n ? 'busy' : 'released');
      }
      case VmemctRequest.SYSTEM_RESET: {
        const problem = want(0, 'none');
        if (problem) return bad(problem);
        this.device.discard(host.systemReset().unplugged);
        // A reboot: the front-end sets the queue up again.
        this.connection.resetQueue();
        return reply(VmemctStatus.OK, 'reset');
      }
      case VmemctRequest.SUSPEND_WAKE: {
        const problem = want(0, 'none');
        if (problem) return bad(problem);
        const woken = host.suspendAndWake();
        if (woken.kind === 'refused') return reply(VmemctStatus.REFUSED, woken.reason);
        this.device.discard(woken.unplugged);
        await this.connection.announce();
        return reply(VmemctStatus.OK, 'woken');
      }
      case VmemctRequest.CHECK_ACCESS: {
        const problem = want(VmemctAccessLayout.size);
        if (problem) return bad(problem);
        const a = decodeStruct(VmemctAccessLayout, m.payload);
        if (a.length > BigInt(Number.MAX_SAFE_INTEGER)) return bad('length too large');
        const check = host.checkAccess(a.addr, Number(a.length), a.write ? 'write' : 'read');
        return check.kind === 'refused' ? reply(VmemctStatus.REFUSED, check.reason) : reply(VmemctStatus.OK, 'allowed');
      }
      default:
        return bad('unknown vmemct request');
    }
  }
}
