/**
 * The machine's apt sources, read to find which mirrors serve the Debian archive, so that a
 * backports suite can be fetched from the same mirrors without any address written into this
 * repository. Pure: text in, records out (the files are read by the caller).
 *
 * Both formats apt reads are understood: deb822 stanzas (`*.sources`: `Types:`, `URIs:`,
 * `Suites:`, `Components:`, `Signed-By:`, `Enabled:`) and one-line entries (`sources.list`,
 * `*.list`: `deb [options] URI SUITE COMPONENT…`).
 */

/** One source entry as apt reads it (a deb822 stanza or a one-line entry). */
export interface AptSourceEntry {
  /** The file it came from and the line it starts on (for messages). */
  readonly file: string;
  readonly line: number;
  /** `deb` and/or `deb-src`. */
  readonly types: readonly string[];
  readonly uris: readonly string[];
  readonly suites: readonly string[];
  readonly components: readonly string[];
  /**
   * The `Signed-By` value as written: a keyring path, a fingerprint, or an embedded key (deb822
   * continuation lines kept, joined by `\n`). Absent when the entry relies on apt's trusted keys.
   */
  readonly signedBy?: string;
  /** False for a stanza with `Enabled: no`. */
  readonly enabled: boolean;
}

/** A mirror of the Debian archive: a URI and the key its releases are checked against. */
export interface ArchiveMirror {
  readonly uri: string;
  readonly signedBy?: string;
}

/** One deb822 field: name (as written), value lines (the first, then continuations). */
interface Deb822Field {
  readonly name: string;
  readonly lines: string[];
}

/** Parses deb822 source stanzas (`*.sources`). Comment lines (`#`) are skipped; a blank line ends a stanza. */
export function parseDeb822Sources(text: string, file: string): AptSourceEntry[] {
  const entries: AptSourceEntry[] = [];
  let fields: Deb822Field[] = [];
  let start = 0;
  const flush = (): void => {
    if (fields.length > 0) {
      const entry = deb822Entry(fields, file, start);
      if (entry) entries.push(entry);
    }
    fields = [];
  };
  text.split(/\r?\n/).forEach((raw, index) => {
    if (raw.trim().length === 0) return flush();
    if (raw.startsWith('#')) return;
    if (/^[ \t]/.test(raw)) {
      // A continuation line (` .` stands for an empty line of a multi-line value).
      const last = fields[fields.length - 1];
      if (last) last.lines.push(raw.trim() === '.' ? '' : raw.trim());
      return;
    }
    const colon = raw.indexOf(':');
    if (colon <= 0) return;
    if (fields.length === 0) start = index + 1;
    fields.push({ name: raw.slice(0, colon).trim(), lines: [raw.slice(colon + 1).trim()] });
  });
  flush();
  return entries;
}

function deb822Entry(fields: readonly Deb822Field[], file: string, line: number): AptSourceEntry | undefined {
  const field = (name: string): Deb822Field | undefined =>
    fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
  const words = (name: string): string[] =>
    (field(name)?.lines ?? [])
      .join(' ')
      .split(/\s+/)
      .filter((w) => w.length > 0);
  const types = words('Types');
  const uris = words('URIs');
  if (types.length === 0 || uris.length === 0) return undefined;
  const signed = field('Signed-By');
  const signedBy = signed ? trimLines(signed.lines).join('\n') : undefined;
  const enabled = (field('Enabled')?.lines[0] ?? 'yes').toLowerCase() !== 'no';
  return {
    file,
    line,
    types,
    uris,
    suites: words('Suites'),
    components: words('Components'),
    ...(signedBy ? { signedBy } : {}),
    enabled,
  };
}

/** Drops leading and trailing empty lines of a multi-line value. */
function trimLines(lines: readonly string[]): string[] {
  const out = [...lines];
  while (out.length > 0 && out[0] === '') out.shift();
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

/** Parses one-line source entries (`sources.list`, `*.list`): `TYPE [OPTIONS] URI SUITE [COMPONENT…]`. */
export function parseOneLineSources(text: string, file: string): AptSourceEntry[] {
  const entries: AptSourceEntry[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const hash = raw.indexOf('#');
    let rest = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    const type = /^(deb|deb-src)\s+/.exec(rest);
    if (!type) return;
    rest = rest.slice(type[0].length).trimStart();
    const options = new Map<string, string>();
    if (rest.startsWith('[')) {
      const close = rest.indexOf(']');
      if (close < 0) return;
      for (const option of rest.slice(1, close).trim().split(/\s+/)) {
        const eq = option.indexOf('=');
        if (eq > 0) options.set(option.slice(0, eq).toLowerCase(), option.slice(eq + 1));
      }
      rest = rest.slice(close + 1).trim();
    }
    const [uri, suite, ...components] = rest.split(/\s+/);
    if (!uri || !suite) return;
    const signedBy = options.get('signed-by');
    entries.push({
      file,
      line: index + 1,
      types: [type[1]!],
      uris: [uri],
      suites: [suite],
      components,
      ...(signedBy ? { signedBy } : {}),
      enabled: true,
    });
  });
  return entries;
}

/**
 * The mirrors serving the Debian archive of release `codename`: the URIs of enabled binary (`deb`)
 * entries whose suites include `codename` or `codename-updates`. Security mirrors (which serve
 * only `codename-security`) are not archive mirrors; nor are CD-ROMs. Each URI appears once (the
 * first entry naming it gives its key).
 */
export function debianArchiveMirrors(entries: readonly AptSourceEntry[], codename: string): ArchiveMirror[] {
  const archiveSuites = new Set([codename, `${codename}-updates`]);
  const mirrors: ArchiveMirror[] = [];
  for (const entry of entries) {
    if (!entry.enabled || !entry.types.includes('deb')) continue;
    if (!entry.suites.some((s) => archiveSuites.has(s.replace(/\/$/, '')))) continue;
    for (const uri of entry.uris) {
      if (uri.startsWith('cdrom:')) continue;
      const normal = uri.replace(/\/+$/, '');
      if (mirrors.some((m) => m.uri === normal)) continue;
      mirrors.push({ uri: normal, ...(entry.signedBy ? { signedBy: entry.signedBy } : {}) });
    }
  }
  return mirrors;
}

/**
 * The deb822 text of a sources file with suite `suite` (e.g. `bookworm-backports`), component
 * `main`, from each mirror: one stanza per distinct key.
 */
export function renderSuiteSources(mirrors: readonly ArchiveMirror[], suite: string): string {
  const byKey = new Map<string, string[]>();
  for (const m of mirrors) byKey.set(m.signedBy ?? '', [...(byKey.get(m.signedBy ?? '') ?? []), m.uri]);
  const stanzas = [...byKey].map(([signedBy, uris]) => {
    const lines = ['Types: deb', `URIs: ${uris.join(' ')}`, `Suites: ${suite}`, 'Components: main'];
    // An embedded key goes on continuation lines, as apt's manual writes it.
    if (signedBy.includes('\n'))
      lines.push('Signed-By:', ...signedBy.split('\n').map((l) => (l === '' ? ' .' : ` ${l}`)));
    else if (signedBy.length > 0) lines.push(`Signed-By: ${signedBy}`);
    return lines.join('\n');
  });
  return stanzas.length === 0 ? '' : `${stanzas.join('\n\n')}\n`;
}

/** The `KEY=value` pairs of an os-release file (quotes removed). */
export function parseOsRelease(text: string): ReadonlyMap<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(raw.trim());
    if (!m) continue;
    const value = m[2]!.trim();
    const quoted = /^(["'])(.*)\1$/.exec(value);
    values.set(m[1]!, quoted ? quoted[2]!.replace(/\\(.)/g, '$1') : value);
  }
  return values;
}
