/**
 * Which driver vectors need the guest's timers to run fast (a guest booted with `icount`).
 *
 * Linux answers a BUSY with silence: it arms a retry timer (50 s, doubled on each expiry up to
 * 300 s) and sends the request again only when it fires, or at once when the configuration
 * changes. A settle that must see such a retry without a host action in between waits on that
 * timer: 950 s of real time for five BUSY answers, beyond every settle bound. Under icount one
 * vCPU's clock jumps to the next timer while the guest idles, and the same five retries take
 * about a second.
 *
 * icount is not free for the other vectors: a back-off a vector means to interrupt (a settle
 * bounded to the BUSY-answered request, then a resize) can run out between two steps, so the
 * retry lands before the resize and the vector sees another story. Those vectors stay on a guest
 * with real-time timers, where 50 s of back-off outlasts any step.
 *
 * The decision follows the steps, not tags: scripted BUSY answers are counted down as settles
 * consume them; a settle that may see more than one request while some are left needs the timer.
 * A host that holds the device busy (`host_busy`) answers BUSY without end, and after its release
 * the driver is still backing off: its next request comes from the timer (the release is not
 * announced).
 * Which answers make Linux back off, by request type (its request functions turn an answer into an
 * error code; the worker retries -ETXTBSY and -ENOMEM on the timer, -EAGAIN at once, and marks
 * the device broken on -EINVAL): BUSY to any request; NACK to UNPLUG and UNPLUG ALL, and ERROR to
 * UNPLUG ALL (both left as -ENOMEM). NACK to PLUG is re-sent at once; ERROR to PLUG or UNPLUG
 * breaks the device. A NACK or ERROR script counts only when its request types are all ones it
 * makes Linux back off on.
 */

/** The parts of a step's action the decision reads (a loaded vector's steps fit it). */
export type TimingAction =
  | {
      readonly kind: 'inject';
      readonly response: string;
      readonly count: number;
      readonly types?: readonly string[];
    }
  | { readonly kind: 'host-busy'; readonly busy: boolean }
  | { readonly kind: 'settle'; readonly maxRequests?: number }
  | { readonly kind: string };

/** The parts of a vector the decision reads. */
export interface TimedVector {
  readonly target: string;
  readonly steps: readonly { readonly action: TimingAction }[];
}

/** The request types after which Linux retries on its timer, per answer (BUSY: every type). */
const TIMER_RETRIED: Readonly<Record<string, readonly string[]>> = {
  NACK: ['UNPLUG', 'UNPLUG_ALL'],
  ERROR: ['UNPLUG_ALL'],
};

/** Whether the answers of an inject step make Linux wait on its retry timer. */
function scriptBacksOff(response: string, types: readonly string[] | undefined): boolean {
  if (response === 'BUSY') return true;
  const retried = TIMER_RETRIED[response];
  return retried !== undefined && types !== undefined && types.every((t) => retried.includes(t));
}

/** Step kinds after which no scripted answer is left (the reboot drops the script, as the adapter does). */
const SCRIPT_ENDS = new Set(['system-reset']);

/**
 * Whether `vector` needs a guest whose timers run fast (icount, one vCPU): some settle must see
 * the driver retry a request on its own timer (answered BUSY, or NACK/ERROR where Linux backs
 * off), without a host action between.
 */
export function needsGuestTimersFast(vector: TimedVector): boolean {
  if (vector.target !== 'driver') return false;
  let busyLeft = 0;
  for (const { action } of vector.steps) {
    if (action.kind === 'inject' && 'response' in action) {
      // An inject step replaces the script; what is left of an earlier one is dropped.
      const types = 'types' in action ? action.types : undefined;
      busyLeft = scriptBacksOff(action.response, types) ? action.count : 0;
    } else if (action.kind === 'host-busy' && 'busy' in action) {
      // Busy: every request is BUSY; released: the one retry the driver owes comes from its timer.
      busyLeft = action.busy ? Infinity : Math.max(busyLeft === Infinity ? 1 : busyLeft, 1);
    } else if (action.kind === 'settle') {
      if (busyLeft === 0) continue;
      const bound = 'maxRequests' in action ? action.maxRequests : undefined;
      // One request per settle is the one a resize or the probe woke; a second one needs the timer.
      if (bound === undefined || bound > 1) return true;
      busyLeft -= bound;
    } else if (SCRIPT_ENDS.has(action.kind)) {
      busyLeft = 0;
    }
  }
  return false;
}
