/**
 * How a target makes a call to the suite while a command is pending, and what a failed call
 * looks like (the suite's answer did not decode, or the suite went away).
 */
import type { HarnessAnswerFields, HarnessCallFields, HarnessCallName } from '../../../spec/src/index';

/** Makes one call and resolves with the suite's decoded answer; rejects with a {@link CallFailure}. */
export type HarnessCaller = <C extends HarnessCallName>(
  call: C,
  fields: HarnessCallFields<C>,
) => Promise<HarnessAnswerFields<C>>;

/** A call that got no usable answer: the command fails with this text. */
export class CallFailure extends Error {
  override readonly name = 'CallFailure';
  /** The suite closed the stream instead of answering (the session ends). */
  readonly endOfInput: boolean;
  constructor(message: string, endOfInput = false) {
    super(message);
    this.endOfInput = endOfInput;
  }
}
