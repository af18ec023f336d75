// The bytes of a trainer's checkpoint: length-prefixed parts (the model as safetensors, the
// optimizer as safetensors whose metadata holds its counters), each with its own SHA-256.
import { createHash } from 'node:crypto';
import type { OptimizerState } from '../nn/optim';
import { parseSafetensors, serializeSafetensors } from '../nn/safetensors';

/** Version 2, 'SCK2': every part carries a SHA-256 of its bytes. */
const MAGIC = 0x324b4353;
/** Version 1, 'SCTP' (no checksums): still read. */
const MAGIC_V1 = 0x53435450;
const DIGEST = 32;

function digest(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest();
}

/** [magic u32][count u32] then, per part, [bytes u64][SHA-256 of the part, 32 bytes] and the bytes. */
export function packParts(parts: readonly Uint8Array[]): Uint8Array {
  const total = 8 + parts.reduce((s, p) => s + 8 + DIGEST + p.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, parts.length, true);
  let at = 8;
  for (const p of parts) {
    view.setBigUint64(at, BigInt(p.length), true);
    out.set(digest(p), at + 8);
    out.set(p, at + 8 + DIGEST);
    at += 8 + DIGEST + p.length;
  }
  return out;
}

/**
 * The parts of a checkpoint, each checked against its SHA-256 (version 2; version 1 files
 * have none to check). `names` name the parts in errors.
 */
export function unpackParts(bytes: Uint8Array, count: number, names: readonly string[] = []): Uint8Array[] {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('state: expected a Uint8Array');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = bytes.length < 8 ? 0 : view.getUint32(0, true);
  if (magic !== MAGIC && magic !== MAGIC_V1)
    throw new RangeError('state: not a training checkpoint (bad magic number)');
  if (view.getUint32(4, true) !== count)
    throw new RangeError(`state: expected ${count} parts, got ${view.getUint32(4, true)}`);
  const digestBytes = magic === MAGIC ? DIGEST : 0;
  const parts: Uint8Array[] = [];
  let at = 8;
  for (let i = 0; i < count; i++) {
    const label = names[i] !== undefined ? `part ${i} (${names[i]})` : `part ${i}`;
    if (at + 8 + digestBytes > bytes.length) throw new RangeError(`state: truncated before ${label}`);
    const len = Number(view.getBigUint64(at, true));
    const start = at + 8 + digestBytes;
    if (start + len > bytes.length) throw new RangeError(`state: ${label} claims ${len} bytes, past the end`);
    const part = bytes.subarray(start, start + len);
    if (digestBytes > 0) {
      const want = bytes.subarray(at + 8, start), got = digest(part);
      if (!got.every((b, k) => b === want[k]))
        throw new RangeError(`state: ${label} does not match its SHA-256: the checkpoint is damaged`);
    }
    parts.push(part);
    at = start + len;
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
