/**
 * `vmemct serve-harness`: the reference model served over the harness protocol
 * (vmemct-harness/1), for the device and the driver target — on stdin/stdout (the suite starts
 * it) or, with `--socket PATH`, on a unix socket (one session per connection).
 */
import * as path from 'node:path';
import { deviceProfileNames, findDeviceProfile } from '../../../model/src/index';
import { HarnessSocketError, serveHarnessSocket, serveHarnessStreams } from '../../../adapters/model-harness/src/index';
import type { ServedModelOptions } from '../../../adapters/model-harness/src/index';
import { OptionSpec, parseArgs, suiteVersion } from './args';
import { EXIT_OK, HarnessError, UsageError } from './usage-error';
import type { CliIo } from './main';

/** The options of `vmemct serve-harness`. */
export const SERVE_HARNESS_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  profile: { kind: 'value' },
  socket: { kind: 'value' },
  quiet: { kind: 'flag' },
};

/**
 * `vmemct serve-harness [--profile P] [--socket PATH] [--quiet]`. Over stdio it serves one
 * session and exits when its input ends. With `--socket` it serves until SIGINT or SIGTERM,
 * then removes the socket and exits 0; it prints one line once it listens (and its signal
 * handlers are in place). Commands it refuses are logged to stderr unless `--quiet`.
 */
export async function serveHarnessCommand(args: readonly string[], io: CliIo): Promise<number> {
  const command = 'serve-harness';
  const parsed = parseArgs(command, args, SERVE_HARNESS_OPTIONS);
  if (parsed.positional.length) throw new UsageError(`${command}: unexpected argument '${parsed.positional[0]}'`);
  const profileName = parsed.values.get('profile') ?? 'spec';
  const profile = findDeviceProfile(profileName);
  if (!profile)
    throw new UsageError(`${command}: unknown profile '${profileName}' (profiles: ${deviceProfileNames()})`);
  const quiet = parsed.flags.has('quiet');
  const options: ServedModelOptions = {
    profile,
    version: suiteVersion(),
    log: (line) => {
      if (!quiet) io.stderr(`serve-harness: ${line}\n`);
    },
  };
  const socketText = parsed.values.get('socket');
  if (socketText === undefined) {
    await serveHarnessStreams(options);
    return EXIT_OK;
  }
  if (socketText.length === 0) throw new UsageError(`${command}: --socket needs a path`);
  const socketPath = path.resolve(socketText);
  if (Buffer.byteLength(socketPath) > 107)
    throw new UsageError(
      `${command}: --socket path is longer than the 107 bytes a unix socket address holds: ${socketPath}`,
    );
  let server;
  try {
    server = await serveHarnessSocket(socketPath, options);
  } catch (e) {
    if (e instanceof HarnessSocketError) throw new HarnessError(`${command}: ${e.message}`);
    throw e;
  }
  // The signal handlers are in place before the readiness line: whoever waits for it may stop the server at once.
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  io.stdout(`serving the model (model:${profile.name}) over vmemct-harness/1 on ${socketPath}\n`);
  await stopped;
  await server.close();
  return EXIT_OK;
}
