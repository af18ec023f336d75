// The bytes of a trainer's checkpoint: length-prefixed parts (the model as safetensors, the
// optimizer as safetensors whose metadata holds its counters).
import type { OptimizerState } from '../nn/optim';
import { parseSafetensors, serializeSafetensors } from '../nn/safetensors';

const MAGIC = 0x53435450; // 'SCTP'

/** [magic u32][count u32] then, per part, [bytes u64] and the bytes. */
export function packParts(parts: readonly Uint8Array[]): Uint8Array {
  const total = 8 + parts.reduce((s, p) => s + 8 + p.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, parts.length, true);
  let at = 8;
  for (const p of parts) {
    view.setBigUint64(at, BigInt(p.length), true);
    out.set(p, at + 8);
    at += 8 + p.length;
  }
  return out;
}

export function unpackParts(bytes: Uint8Array, count: number): Uint8Array[] {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('state: expected a Uint8Array');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8 || view.getUint32(0, true) !== MAGIC)
    throw new RangeError('state: not a training checkpoint (bad magic number)');
  if (view.getUint32(4, true) !== count)
    throw new RangeError(`state: expected ${count} parts, got ${view.getUint32(4, true)}`);
  const parts: Uint8Array[] = [];
  let at = 8;
  for (let i = 0; i < count; i++) {
    if (at + 8 > bytes.length) throw new RangeError(`state: truncated before part ${i}`);
    const len = Number(view.getBigUint64(at, true));
    if (at + 8 + len > bytes.length) throw new RangeError(`state: part ${i} claims ${len} bytes, past the end`);
    parts.push(bytes.subarray(at + 8, at + 8 + len));
    at += 8 + len;
  }
  if (at !== bytes.length) throw new RangeError(`state: ${bytes.length - at} bytes after the last part`);
  return parts;
}

export function optimizerToBytes(state: OptimizerState): Uint8Array {
  return serializeSafetensors(
    state.slots.map(([name, data]) => ({ name, dtype: 'F32', shape: [data.length], data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) })),
    { stepCount: String(state.stepCount), lr: String(state.lr), counts: JSON.stringify(state.counts) },
  );
}

export function optimizerFromBytes(bytes: Uint8Array): OptimizerState {
  const { tensors, metadata } = parseSafetensors(bytes);
  if (metadata === undefined || metadata.stepCount === undefined || metadata.lr === undefined || metadata.counts === undefined)
    throw new RangeError('state: the optimizer part has no counters');
  const slots: [string, Float32Array][] = [];
  for (const [name, t] of tensors) {
    const copy = t.data.slice();
    slots.push([name, new Float32Array(copy.buffer, 0, copy.length / 4)]);
  }
  return { stepCount: Number(metadata.stepCount), lr: Number(metadata.lr), slots, counts: JSON.parse(metadata.counts) };
}
