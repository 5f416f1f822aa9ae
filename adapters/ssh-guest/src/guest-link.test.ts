/** GuestLink's run state: a held machine resumed once, with later callers waiting for that resume. */
import type { QemuMemoryDevice, QmpClient } from '../../qemu-platform/src/index';
import { GuestLink } from './guest-link';

let answerSsh: () => void = () => undefined;
jest.mock('./ssh-shell', () => ({
  ...jest.requireActual('./ssh-shell'),
  // The rebooted guest answers over SSH when the test says so.
  waitForSsh: jest.fn(
    () => new Promise((resolve) => (answerSsh = () => resolve({ closed: false, close: () => undefined }))),
  ),
}));

function heldLink(): { link: GuestLink; commands: string[] } {
  const commands: string[] = [];
  const qmp = { execute: async (command: string) => commands.push(command), close: () => undefined };
  const device = { systemReset: async () => ({ kind: 'reset', event: { event: 'RESET' } }) };
  const link = new GuestLink(
    { user: 'root', host: '127.0.0.1', port: 22 },
    qmp as unknown as QmpClient,
    device as unknown as QemuMemoryDevice,
    1000,
  );
  return { link, commands };
}

test('a second resume while the first is under way waits until the guest answers; cont is sent once', async () => {
  const { link, commands } = heldLink();
  await link.resetMachine(true);
  expect(link.held).toBe(true);
  const order: string[] = [];
  const first = link.resume().then(() => order.push('first'));
  const second = link.resume().then(() => order.push('second'));
  await new Promise((r) => setTimeout(r, 20));
  // Neither is done before the guest answers.
  expect(order).toEqual([]);
  answerSsh();
  await Promise.all([first, second]);
  expect(order.sort()).toEqual(['first', 'second']);
  expect(commands.filter((c) => c === 'cont')).toHaveLength(1);
  // Once resumed, a resume has nothing to wait for.
  await expect(link.resume()).resolves.toBeUndefined();
  expect(commands.filter((c) => c === 'cont')).toHaveLength(1);
});
