/**
 * The suite's side of the harness protocol, bare, for tests of the served model: writes
 * commands, answers calls with a test's function, reads replies — over any pair of streams.
 */
import type { Readable, Writable } from 'node:stream';
import { streamLineChannel } from '../src/serve';
import type { LineChannel } from '../src/harness-session';

/** A JSON message as parsed. */
export type Message = Record<string, unknown>;

/** Answers one call (`{"call":…}`) with the fields of the answer (without `answer`). */
export type CallAnswerer = (call: Message) => Message;

/** One command's exchange: its reply and the calls the harness made meanwhile. */
export interface Exchange {
  readonly reply: Message;
  readonly calls: readonly Message[];
}

export class SuiteClient {
  private readonly channel: LineChannel;
  private nextId = 1;

  constructor(fromHarness: Readable, toHarness: Writable) {
    this.channel = streamLineChannel(fromHarness, toHarness);
  }

  /** The next message, or undefined at the end of the harness's output. */
  async read(): Promise<Message | undefined> {
    const line = await this.channel.read();
    return line === undefined ? undefined : (JSON.parse(line) as Message);
  }

  /** Writes a raw line. */
  writeLine(line: string): void {
    this.channel.write(line);
  }

  /** Sends a command and answers its calls until the reply comes. */
  async send(op: string, params: Message = {}, answer?: CallAnswerer): Promise<Exchange> {
    const id = this.nextId++;
    this.channel.write(JSON.stringify({ id, op, ...params }));
    const calls: Message[] = [];
    for (;;) {
      const message = await this.read();
      if (message === undefined) throw new Error(`the harness's output ended while ${op} was pending`);
      if ('call' in message) {
        calls.push(message);
        if (!answer) throw new Error(`unexpected call ${JSON.stringify(message)} during ${op}`);
        this.channel.write(JSON.stringify({ answer: message.call, ...answer(message) }));
        continue;
      }
      if (message.id !== id) throw new Error(`reply ${JSON.stringify(message)} to command ${id}`);
      return { reply: message, calls };
    }
  }
}
