/**
 * The harness protocol's lines as the served model reads and writes them, over the protocol's
 * own decoders and encoders in spec/ (harness-protocol-codec): a command line decoded into its
 * op and typed params, replies, calls and answers encoded and decoded.
 */
import {
  HarnessCall,
  HarnessCallFields,
  HarnessCallName,
  HarnessAnswerFields,
  HarnessCommand,
  HarnessDecoded,
  HarnessOp,
  HarnessReply,
  decodeAnswer,
  decodeCommand,
  decodeCount,
  encodeCall,
  encodeReply,
  parseHarnessLine,
} from '../../../spec/src/index';

export type { HarnessCallName, HarnessCommand, HarnessOp } from '../../../spec/src/index';

/** How a command ended, as a target answers it (the success fields decoded: bigints, bytes). */
export type CommandOutcome =
  | { readonly kind: 'ok'; readonly fields: Readonly<Record<string, unknown>> }
  | { readonly kind: 'error'; readonly error: string }
  | { readonly kind: 'unsupported'; readonly reason: string };

/** A command line that did not decode: why, and its id when it had a usable one. */
export interface CommandProblem {
  readonly ok: false;
  readonly reason: string;
  readonly id?: number;
}

/** Parses and decodes one command line (without its newline). */
export function decodeCommandLine(
  line: string,
): { readonly ok: true; readonly value: HarnessCommand } | CommandProblem {
  const parsed = parseHarnessLine(line);
  if (!parsed.ok) return parsed;
  const { shape, message } = parsed.value;
  const id = decodeCount(message.id);
  if (shape !== 'command')
    return {
      ok: false,
      reason: `expected a command ({"id":…,"op":…}), got a ${shape}`,
      id: id.ok ? id.value : undefined,
    };
  const command = decodeCommand(message);
  return command.ok ? command : { ok: false, reason: command.reason, id: id.ok ? id.value : undefined };
}

/** The reply line (no newline) of command `op` with `id`; a command that did not decode has id `null`. */
export function encodeReplyLine(op: HarnessOp | undefined, id: number | null, outcome: CommandOutcome): string {
  if (op === undefined || id === null) {
    const text = outcome.kind === 'error' ? outcome.error : 'refused';
    return JSON.stringify({ id, ok: false, error: text });
  }
  const reply =
    outcome.kind === 'ok'
      ? { kind: 'ok' as const, id, fields: outcome.fields as never }
      : outcome.kind === 'error'
        ? { kind: 'error' as const, id, error: outcome.error }
        : { kind: 'unsupported' as const, id, reason: outcome.reason };
  return JSON.stringify(encodeReply(op, reply as HarnessReply<HarnessOp>));
}

/** The call line (no newline). */
export function encodeCallLine<C extends HarnessCallName>(call: C, fields: HarnessCallFields<C>): string {
  return JSON.stringify(encodeCall({ call, fields } as HarnessCall));
}

/** Decodes the suite's answer line to call `call`. */
export function decodeAnswerLine<C extends HarnessCallName>(
  call: C,
  line: string,
): HarnessDecoded<HarnessAnswerFields<C>> {
  const parsed = parseHarnessLine(line);
  if (!parsed.ok) return { ok: false, reason: `answer to ${call}: ${parsed.reason}` };
  if (parsed.value.shape !== 'answer')
    return { ok: false, reason: `answer to ${call}: expected an answer, got a ${parsed.value.shape}` };
  const answer = decodeAnswer(call, parsed.value.message);
  return answer.ok ? { ok: true, value: answer.value.fields as unknown as HarnessAnswerFields<C> } : answer;
}
