/**
 * The guard that keeps two vectors off the guest at once. When the runner gives up on a vector
 * (its timeout), that vector's work may still be running; once the next vector has taken the
 * guest, the old chain's next command fails instead of interleaving with the new one.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { AdapterError } from '../../core/src/contract';

/** Numbers the vectors and tells, from inside an async chain, whether its vector is still the current one. */
export class VectorEpochs {
  /** Which vector's work an async chain belongs to. */
  private readonly chainEpoch = new AsyncLocalStorage<number>();
  private latest = 0;

  /** Starts the next vector: from now on the work of earlier ones fails at its next command. */
  next(): number {
    return ++this.latest;
  }

  /** The current vector's epoch. */
  get current(): number {
    return this.latest;
  }

  /** Runs `work` as part of vector `epoch`. */
  run<T>(epoch: number, work: () => Promise<T>): Promise<T> {
    return this.chainEpoch.run(epoch, work);
  }

  /** Fails when the calling chain belongs to a vector the runner has given up on (chains outside any vector pass). */
  check(): void {
    const mine = this.chainEpoch.getStore();
    if (mine !== undefined && mine !== this.latest)
      throw new AdapterError('abandoned: a later vector has taken over the guest');
  }
}
