/**
 * The living spec's profiles page: what each model profile reproduces, every knob side by side,
 * and the QEMU versions compared knob by knob with the source each value comes from, the
 * differences between consecutive versions marked.
 */
import { FEATURE_BITS } from '../../../spec/src/index';
import {
  DEVICE_PROFILES,
  DEVICE_PROFILE_ALIASES,
  DeviceProfile,
  ProfileKnob,
  QEMU_10_0_PROFILE,
  QEMU_7_2_PROFILE,
} from '../../../model/src/index';
import { esc, page, table } from './html';

/** The fields of a profile that are not knobs. */
const NOT_KNOBS: readonly (keyof DeviceProfile)[] = ['name', 'title', 'source', 'knobSources', 'notes'];

/** The QEMU profiles in version order: each column is compared with the one before it. */
const QEMU_VERSIONS: readonly DeviceProfile[] = [QEMU_7_2_PROFILE, QEMU_10_0_PROFILE];

/** The knobs of a profile, in declaration order. */
export function profileKnobs(profile: DeviceProfile): ProfileKnob[] {
  return (Object.keys(profile) as (keyof DeviceProfile)[]).filter((k) => !NOT_KNOBS.includes(k)) as ProfileKnob[];
}

/** A knob's value as text. */
export function profileValue(key: ProfileKnob, value: unknown): string {
  if (key === 'defaultFeatures') {
    const f = value as bigint;
    return FEATURE_BITS.filter((b) => (f >> BigInt(b.value)) & 1n)
      .map((b) => b.name)
      .join(', ');
  }
  if (Array.isArray(value)) return value.join(' → ');
  if (typeof value === 'object' && value !== null)
    return Object.entries(value)
      .map(([k, v]) => `${k}: ${typeof v === 'bigint' ? `${v / (1n << 20n)} MiB` : String(v)}`)
      .join(', ');
  return String(value);
}

/** A source note (`URL (explanation)`, or plain text) with its URL as a link. */
function sourceHtml(source: string): string {
  const m = /^(https:\/\/\S+)(?:\s+(.*))?$/.exec(source);
  if (!m) return `<code>${esc(source)}</code>`;
  const shortName = m[1]!.replace(/^https:\/\/github\.com\/qemu\/qemu\/blob\//, '');
  return `<a href="${esc(m[1]!)}">${esc(shortName)}</a>${m[2] ? ` ${esc(m[2])}` : ''}`;
}

/** The knobs in which `later` differs from `earlier`. */
export function changedKnobs(earlier: DeviceProfile, later: DeviceProfile): ProfileKnob[] {
  return profileKnobs(later).filter((k) => profileValue(k, earlier[k]) !== profileValue(k, later[k]));
}

function qemuSection(): string {
  const knobs = profileKnobs(QEMU_VERSIONS[0]!);
  const changed = new Set<ProfileKnob>();
  for (let i = 1; i < QEMU_VERSIONS.length; i++)
    for (const k of changedKnobs(QEMU_VERSIONS[i - 1]!, QEMU_VERSIONS[i]!)) changed.add(k);
  // The changes first, then what stayed.
  const ordered = [...knobs.filter((k) => changed.has(k)), ...knobs.filter((k) => !changed.has(k))];
  const rows = ordered.map((k) => [
    `<code>${esc(k)}</code>${changed.has(k) ? ' <span class="changed">changed</span>' : ''}`,
    ...QEMU_VERSIONS.map((p, i) => {
      const value = esc(profileValue(k, p[k]));
      const differsFromPrevious = i > 0 && profileValue(k, QEMU_VERSIONS[i - 1]![k]) !== profileValue(k, p[k]);
      const source = p.knobSources?.[k];
      return `${differsFromPrevious ? `<mark>${value}</mark>` : value}${source ? `<br><span class="muted">${sourceHtml(source)}</span>` : ''}`;
    }),
  ]);
  const names = QEMU_VERSIONS.map((p) => `<code>${esc(p.name)}</code>`).join(' → ');
  return `<h2 id="qemu-versions">QEMU versions: ${names}</h2>
<p>Each QEMU the suite runs against has its own profile, every knob taken from that version's <code>hw/virtio/virtio-mem.c</code> (linked beside the value) and checked against the real binary by the differential check (<code>npm run test:qemu</code>: seeded operations and the corpus transcripts, each QEMU against its own profile). ${changed.size} knobs changed; they come first and their new values are marked.</p>
<div class="scroll">
${table(['choice', ...QEMU_VERSIONS.map((p) => `<code>${esc(p.name)}</code>`)], rows)}
</div>`;
}

/** The profiles page. */
export function profilesPage(): string {
  const profiles = Object.values(DEVICE_PROFILES);
  const keys = profileKnobs(profiles[0]!);
  const rows = keys.map((k) => {
    const values = profiles.map((p) => esc(profileValue(k, p[k])));
    const differs = new Set(values).size > 1;
    return [`<code>${esc(k)}</code>${differs ? '' : ' <span class="muted">(same everywhere)</span>'}`, ...values];
  });
  const about = table(
    ['profile', 'reproduces', 'source', 'notes'],
    profiles.map((p) => [`<code>${esc(p.name)}</code>`, esc(p.title), sourceHtml(p.source), esc(p.notes.join(' '))]),
  );
  const aliases = Object.entries(DEVICE_PROFILE_ALIASES)
    .map(([alias, name]) => `<code>--profile ${esc(alias)}</code> is <code>${esc(name)}</code>`)
    .join('; ');
  const body = `<h1>Device profiles</h1>
<p>Where the spec leaves room, implementations decide; the model reproduces each decision as a profile (<code>vmemct run --profile NAME</code>). A profile never changes what is conforming, only which of the conforming outcomes the model device gives. Aliases: ${aliases}.</p>
${about}
${qemuSection()}
<h2>Side by side</h2>
<div class="scroll">
${table(['choice', ...profiles.map((p) => `<code>${esc(p.name)}</code>`)], rows)}
</div>`;
  return page('Profiles', 'profiles.html', body);
}
