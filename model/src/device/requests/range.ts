/**
 * The range check PLUG, UNPLUG and STATE share (QEMU has one such helper too,
 * `virtio_mem_valid_range`): the range [addr, addr + nb_blocks × block_size) must start at a
 * block boundary, cover at least one block and lie inside the usable region (dev.plug.3,
 * dev.unplug.3, dev.state.3 cite it; each evaluator adds its own ID).
 */
import type { VirtioMemConfig, VirtioMemRequest } from '../../codec/codec';

/** The range of a request: the blocks it covers, or why it is invalid (every failing rule, in a fixed order). */
export type RangeCheck =
  | { readonly valid: true; readonly firstBlock: number; readonly count: number }
  | { readonly valid: false; readonly problems: readonly string[] };

/** Checks the range of a PLUG, UNPLUG or STATE request against the configuration. Reads nothing else. */
export function checkRange(config: VirtioMemConfig, request: VirtioMemRequest): RangeCheck {
  const problems: string[] = [];
  if (request.addr % config.block_size !== 0n)
    problems.push(`addr 0x${request.addr.toString(16)} is not aligned to block_size`);
  if (request.nb_blocks === 0) problems.push('nb_blocks is 0');
  const end = request.addr + BigInt(request.nb_blocks) * config.block_size;
  if (request.addr < config.addr || end > config.addr + config.usable_region_size) {
    problems.push('the range reaches outside the usable region');
  }
  if (problems.length > 0) return { valid: false, problems };
  return {
    valid: true,
    firstBlock: Number((request.addr - config.addr) / config.block_size),
    count: request.nb_blocks,
  };
}
