/**
 * `--host-control FILE`: the argv templates of the host actions for a VMM the suite did not start
 * (YAML or JSON). Each key names a hook and holds the program and its arguments:
 *
 * ```yaml
 * timeout_ms: 10000                        # bound on each hook (default 10000)
 * base_size: 1073741824                    # the VM's memory besides the device, for {total_size…}
 * resize: [ch-remote, --api-socket, /run/ch.sock, resize, --memory, "{total_size}"]
 * system_reset: [ch-remote, --api-socket, /run/ch.sock, reboot]
 * ```
 *
 * A problem (unknown key, a hook that is not a list of strings, a placeholder the hook does not
 * offer) is a usage error naming file, line and field (exit 3).
 */
import * as fs from 'node:fs';
import { HOOK_NAMES, checkTemplate, namesTotalSize } from '../../../adapters/device-session/src/argv-host-control';
import type {
  ArgvTemplate,
  HookName,
  HostControlTemplates,
} from '../../../adapters/device-session/src/argv-host-control';
import { YamlSource } from '../loader/yaml-source';
import { formatProblem } from '../loader/types';
import type { LoadProblem } from '../loader/types';
import { UsageError } from './usage-error';

/** Bound on each hook when the file names none, in milliseconds. */
export const DEFAULT_HOOK_TIMEOUT_MS = 10_000;

/** Reads and checks a host-control file; {@link UsageError} (exit 3) listing every problem. */
export function loadHostControlFile(file: string): HostControlTemplates {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--host-control: cannot read ${file}: ${(e as Error).message}`);
  }
  const { templates, problems } = parseHostControl(file, text);
  if (problems.length > 0 || !templates) throw new UsageError(problems.map(formatProblem).join('\n'));
  return templates;
}

/** Parses the text of a host-control file: the templates, or the problems with file, line and field. */
export function parseHostControl(
  file: string,
  text: string,
): { templates?: HostControlTemplates; problems: LoadProblem[] } {
  const parsed = YamlSource.parse(file, text);
  const source = parsed.source;
  if (!source) return { problems: parsed.problems };
  const value = source.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { problems: [source.problem([], 'a host-control file is a mapping of hook names to argv lists')] };
  const problems: LoadProblem[] = [];
  const hooks: Partial<Record<HookName, ArgvTemplate>> = {};
  let timeoutMs = DEFAULT_HOOK_TIMEOUT_MS;
  let baseSize: bigint | undefined;
  for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
    if (key === 'base_size') {
      if (typeof entry === 'number' && Number.isSafeInteger(entry) && entry >= 0) baseSize = BigInt(entry);
      else problems.push(source.problem([key], 'must be a whole number of bytes (the VM memory besides the device)'));
      continue;
    }
    if (key === 'timeout_ms') {
      if (typeof entry === 'number' && Number.isInteger(entry) && entry > 0 && entry <= 600_000) timeoutMs = entry;
      else problems.push(source.problem([key], 'must be a whole number of milliseconds from 1 to 600000'));
      continue;
    }
    if (!(HOOK_NAMES as readonly string[]).includes(key)) {
      problems.push(
        source.problem([key], `unknown hook; the hooks are ${HOOK_NAMES.join(', ')} (and timeout_ms, base_size)`),
      );
      continue;
    }
    const hook = key as HookName;
    if (!Array.isArray(entry) || entry.length === 0 || !entry.every((a) => typeof a === 'string' && a !== '')) {
      problems.push(
        source.problem([key], 'must be a non-empty list of non-empty strings: the program, then its arguments'),
      );
      continue;
    }
    const argv = entry as string[];
    const template: ArgvTemplate = {
      argv,
      sites: argv.map((_a, i) => ({ file, line: source.lineOf([key, i]), field: `${key}[${i}]` })),
    };
    const unfit = checkTemplate(hook, template);
    for (const p of unfit) problems.push({ ...p.site, reason: p.reason });
    if (!('base_size' in (value as Record<string, unknown>)))
      argv.forEach((arg, i) => {
        if (namesTotalSize(arg))
          problems.push({
            ...template.sites[i]!,
            reason: '{total_size…} is base_size plus requested_size: the file needs base_size (bytes)',
          });
      });
    if (unfit.length === 0) hooks[hook] = template;
  }
  if (problems.length === 0 && Object.keys(hooks).length === 0)
    problems.push(source.problem([], `names no hook; the hooks are ${HOOK_NAMES.join(', ')}`));
  return problems.length > 0 ? { problems } : { templates: { file, timeoutMs, baseSize, hooks }, problems };
}
