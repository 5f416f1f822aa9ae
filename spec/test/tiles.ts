/** Test helper: whether a struct layout's fields, in offset order, tile it with no gap or overlap. */
import { STRUCT_FIELD_BYTES, StructLayout } from '../src/index';

export function tiles(layout: StructLayout): boolean {
  let next = 0;
  for (const field of Object.values(layout.fields).sort((a, b) => a.offset - b.offset)) {
    if (field.offset !== next) return false;
    next += STRUCT_FIELD_BYTES[field.type];
  }
  return next === layout.size;
}
