/**
 * What the generic vhost-user handler needs from the device it serves: a small required core
 * (features, status, reset, one chain at a time, configuration changes) and optional abilities
 * that answer an explicit "unsupported" unless a device overrides them.
 *
 * The handler owns everything vhost-user: the socket, the memory table, the rings and their fds,
 * the back-end channel. A device never parses a message; it sees chains and register accesses.
 */
import type { Chain, Completion } from '../../core/src/contract';
import { ChainLimits, DEFAULT_CHAIN_LIMITS } from '../../virtio/src/index';
import type { Message } from '../../vhost-user/src/protocol';
import type { HandlerReply } from './messages';

/** An ability the device does not have, with the reason the front-end is given. */
export interface Unsupported {
  readonly kind: 'unsupported';
  readonly reason: string;
}

/** An {@link Unsupported} with this reason. */
export function unsupportedAbility(reason: string): Unsupported {
  return { kind: 'unsupported', reason };
}

/** The device behind a vhost-user back-end. */
export abstract class VhostUserDevice {
  /** The device type's name, for messages (`virtio-mem`). */
  abstract readonly name: string;
  /** Virtio features the device offers (GET_FEATURES; the handler adds the protocol-features bit). */
  abstract readonly offeredFeatures: bigint;
  /** The features the driver accepted (SET_FEATURES). */
  abstract ackFeatures(features: bigint): void;
  /** The virtio status register (GET_STATUS). */
  abstract readStatus(): number;
  /** A nonzero write of the status register (SET_STATUS); 0 is {@link reset}. */
  abstract writeStatus(value: number): void;
  /** A device reset (status 0, RESET_DEVICE, RESET_OWNER); the handler forgets the rings itself. */
  abstract reset(): void;
  /** Processes one chain of the request queue. */
  abstract processChain(chain: Chain): Completion;
  /** The queue cannot be processed (unreadable shared memory, a malformed ring): the device flags it. */
  abstract failQueue(): void;
  /** Configuration changes raised so far; the handler announces each with CONFIG_CHANGE_MSG. */
  abstract readonly configChanges: number;

  /** Bounds on one chain's readable and writable bytes; a chain beyond them fails the queue. */
  get chainLimits(): ChainLimits {
    return DEFAULT_CHAIN_LIMITS;
  }

  /** Queues the device has (GET_QUEUE_NUM). */
  get queueCount(): number {
    return 1;
  }

  /** The configuration space (GET_CONFIG). */
  readConfig(): Uint8Array | Unsupported {
    return unsupportedAbility('the device has no configuration space');
  }

  /** A write to the configuration space (SET_CONFIG). */
  writeConfig(offset: number, bytes: Uint8Array): { readonly kind: 'written' } | Unsupported {
    void offset;
    void bytes;
    return unsupportedAbility('the device configuration is read-only');
  }
}

/**
 * A handler of messages beyond the standard ones (a vendor's control extension), offered with
 * its own protocol-feature bit. It checks its own payloads and fds; fds it leaves in the message
 * are closed by the generic handler.
 */
export interface VendorExtension {
  /** The protocol-feature bit that announces the extension. */
  readonly protocolFeature: number;
  /** Whether a request code belongs to the extension. */
  handles(request: number): boolean;
  /** Answers one of its messages. */
  handle(message: Message): Promise<HandlerReply>;
}
