/**
 * The `vu.*` suite: checks of the vhost-user protocol itself, against any back-end (not only
 * virtio-mem), run by the main runner like vectors (verdicts, timeouts, expectation files, JSON,
 * JUnit, TAP, the docs matrix).
 *
 * Where the checks live, and why here: they speak the vhost-user protocol message by message
 * (malformed and pipelined messages included), so they import its wire format,
 * adapters/vhost-user/src/protocol.ts (message codes, flags and layouts as data; no I/O). Every
 * byte they send or receive goes through a {@link VhostUserConnection}, an interface defined in
 * this suite; the vhost-user front-end implements it and the command line wires it in. So the
 * suite imports no adapter, no front-end and no native helper, and conformance/test/layering.test.ts
 * holds that: this folder may import that one protocol module of the adapter folder, nothing else.
 *
 * Each check opens its own connection(s) and they are closed before the next check starts, so
 * the checks also work against back-ends that serve one client at a time (libvhost-user's
 * qemu-storage-daemon). Verdicts:
 * - `pass`: the back-end behaved as the protocol requires (the finding says what was seen);
 * - `fail`: it broke the protocol, did not answer a message in time, or stopped serving;
 * - `unsupported`: a protocol feature the check needs is not offered (named), or an input the
 *   check needs was not given (the back-end's PID for the fd check);
 * - `error`: our side failed (a memfd, an eventfd, /proc); `timeout`: the check as a whole
 *   did not finish within the runner's per-case timeout.
 */
import {
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  protocolFeatureName,
  protocolFeatureNames,
} from '../../../../adapters/vhost-user/src/protocol';
import type { CheckTarget, Suite } from '../suite';
import { backendChannelCheck } from './backend-channel';
import { OpeningOptions, VhostUserCheckContext, describeBits, runOpening } from './check';
import { configCheck } from './config';
import { BackendGone, VhostUserConnection } from './connection';
import { fdHygieneCheck } from './fd-hygiene';
import { handshakeCheck } from './handshake';
import { memSlotsCheck } from './mem-slots';
import { memTableReplaceCheck } from './mem-table-replace';
import { reconnectCheck } from './reconnect';
import { remUnknownRegionCheck } from './rem-unknown-region';
import { replyAckCheck } from './reply-ack';
import { vringSetupCheck } from './vring-setup';

export type { VhostUserCheckContext } from './check';
export type { VhostUserConnection } from './connection';

/** The suite, its checks in the order they run. */
export const VHOST_USER_SUITE: Suite<VhostUserCheckContext> = {
  name: 'vhost-user',
  title: 'vhost-user transport checks (the protocol itself, any back-end)',
  checks: [
    handshakeCheck,
    replyAckCheck,
    configCheck,
    vringSetupCheck,
    memTableReplaceCheck,
    memSlotsCheck,
    remUnknownRegionCheck,
    backendChannelCheck,
    fdHygieneCheck,
    reconnectCheck,
  ],
};

/** The back-end under test, as the command line found it. */
export interface VhostUserBackendUnderTest {
  readonly socketPath: string;
  /** Its process, for the fd check. */
  readonly backendPid?: number;
  /** What it is, as reports name it. */
  readonly implementation: string;
  /** GET_FEATURES of a probe connection. */
  readonly offeredFeatures: bigint;
  /** GET_PROTOCOL_FEATURES of a probe connection (0 without bit 30). */
  readonly offeredProtocolFeatures: bigint;
  /** Opens a connection (a strict front-end); throws connect(2)'s errno error when refused. */
  connect(): VhostUserConnection;
}

/** errno codes of a connect that mean the back-end is not (or no longer) serving. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EAGAIN', 'ETIMEDOUT', 'ENOTSOCK']);

/** Why a check needing these protocol features cannot run against the back-end (undefined: it can). */
function unmetNeeds(backend: VhostUserBackendUnderTest, needs: readonly number[]): string | undefined {
  const missing = needs.filter((bit) => !(backend.offeredProtocolFeatures & (1n << BigInt(bit))));
  if (missing.length === 0) return undefined;
  const names = missing.map((bit) => `${protocolFeatureName(bit)} (protocol feature ${bit})`).join(', ');
  return backend.offeredFeatures & PROTOCOL_FEATURES_BIT
    ? `the back-end does not offer ${names}; it offers protocol features ${describeBits(backend.offeredProtocolFeatures)}`
    : `the back-end does not offer protocol features at all (virtio feature bit 30 clear), so not ${names}`;
}

/** The checks' target: a fresh context per check, whose connections are all closed after it. */
export function vhostUserCheckTarget(backend: VhostUserBackendUnderTest): CheckTarget<VhostUserCheckContext> {
  return {
    info: {
      name: 'vhost-user',
      implementation: backend.implementation,
      capabilities: protocolFeatureNames(backend.offeredProtocolFeatures),
    },
    open(check) {
      const needs = check.needs.map((name) => ProtocolFeature[name as keyof typeof ProtocolFeature]);
      const unmet = unmetNeeds(backend, needs);
      if (unmet !== undefined) return { kind: 'unsupported', reason: unmet };
      const connections: VhostUserConnection[] = [];
      // Once the runner closes the context (the check ended or timed out), an abandoned check body
      // may not open new connections: they would outlive the check.
      let closed = false;
      const connect = (): VhostUserConnection => {
        if (closed) throw new BackendGone('the check was closed (it ended or timed out)');
        let c: VhostUserConnection;
        try {
          c = backend.connect();
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code ?? '';
          if (UNREACHABLE.has(code))
            throw new BackendGone(
              `cannot connect to ${backend.socketPath} (${(e as Error).message}): the back-end stopped serving`,
            );
          throw e;
        }
        connections.push(c);
        return c;
      };
      const context: VhostUserCheckContext = {
        socketPath: backend.socketPath,
        backendPid: backend.backendPid,
        connect,
        open: (options?: OpeningOptions) => runOpening(connect(), needs, options),
      };
      return {
        kind: 'ready',
        context,
        close() {
          closed = true;
          for (const c of connections) c.close();
        },
      };
    },
  };
}
