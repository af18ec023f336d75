// Weights as safetensors: an 8-byte little-endian header length, a JSON header (padded
// with spaces to a multiple of 8 bytes) mapping each name to {dtype, shape, data_offsets},
// then the raw little-endian data. Names and order are PyTorch's state_dict's, so
// `model.load_state_dict(safetensors.torch.load_file(path))` reads our files and we read
// theirs (docs/LAYERS.md).
import fs from 'node:fs';
import { describe } from '../check';
import { Module, StateEntry } from './module';

export type SafetensorsDType = 'F32' | 'I64';

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Little-endian bytes. */
  data: Uint8Array;
}

const BYTES: Record<SafetensorsDType, number> = { F32: 4, I64: 8 };

/** The file's bytes for these tensors (in order), with optional string metadata. */
export function serializeSafetensors(entries: readonly SafetensorsEntry[], metadata?: Record<string, string>): Uint8Array {
  if (!Array.isArray(entries as unknown)) throw new TypeError(`entries: expected an array of { name, dtype, shape, data }, got ${describe(entries)}`);
  entries.forEach((e: unknown, i) => {
    if (e === null || typeof e !== 'object') throw new TypeError(`entries[${i}]: expected { name, dtype, shape, data }, got ${describe(e)}`);
    const { name, dtype, shape, data } = e as Record<string, unknown>;
    if (typeof name !== 'string') throw new TypeError(`entries[${i}].name: expected a string, got ${describe(name)}`);
    if (dtype !== 'F32' && dtype !== 'I64') throw new RangeError(`entries[${i}].dtype: expected 'F32' or 'I64', got ${describe(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0))
      throw new RangeError(`entries[${i}].shape: expected an array of integers >= 0, got ${describe(shape)}`);
    if (!(data instanceof Uint8Array)) throw new TypeError(`entries[${i}].data: expected a Uint8Array, got ${describe(data)}`);
  });
  if (metadata !== undefined && (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)))
    throw new TypeError(`metadata: expected an object of strings, got ${describe(metadata)}`);
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') throw new TypeError(`metadata.${k}: expected a string, got ${describe(v)}`);
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const e of entries) {
    if (e.name === '__metadata__' || e.name in header) throw new RangeError(`entries: duplicate or reserved name '${e.name}'`);
    const count = e.shape.reduce((p, s) => p * s, 1);
    if (e.data.byteLength !== count * BYTES[e.dtype])
      throw new RangeError(`${e.name}: shape [${e.shape.join(', ')}] of ${e.dtype} needs ${count * BYTES[e.dtype]} bytes, got ${e.data.byteLength}`);
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.data.byteLength] };
    offset += e.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const e of entries) {
    out.set(e.data, at);
    at += e.data.byteLength;
  }
  return out;
}

export interface ParsedSafetensors {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string> | undefined;
}

/** Reads the bytes of a safetensors file; every offset and size is checked. */
export function parseSafetensors(bytes: Uint8Array): ParsedSafetensors {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes: expected a Uint8Array, got ${describe(bytes)}`);
  if (bytes.byteLength < 8) throw new RangeError(`bytes: expected at least 8 bytes (the header length), got ${bytes.byteLength}`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.byteLength - 8)) throw new RangeError(`bytes: the header length ${n} runs past the end of the ${bytes.byteLength} bytes`);
  const headerEnd = 8 + Number(n);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(n)).toString('utf8'));
  } catch (e) {
    throw new RangeError(`bytes: the header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new RangeError('bytes: the header is not a JSON object');
  const dataLength = bytes.byteLength - headerEnd;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> | undefined;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: off } = (info ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (dtype !== 'F32' && dtype !== 'I64') throw new RangeError(`${name}: expected dtype 'F32' or 'I64', got ${describe(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0))
      throw new RangeError(`${name}: expected a shape of non-negative integers, got ${describe(shape)}`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every((s) => Number.isSafeInteger(s) && s >= 0) || off[0] > off[1] || off[1] > dataLength)
      throw new RangeError(`${name}: data_offsets ${JSON.stringify(off)} are not a range inside the ${dataLength} data bytes`);
    const count = (shape as number[]).reduce((p, s) => p * s, 1);
    if (off[1] - off[0] !== count * BYTES[dtype])
      throw new RangeError(`${name}: shape [${shape.join(', ')}] of ${dtype} needs ${count * BYTES[dtype]} bytes, the offsets give ${off[1] - off[0]}`);
    tensors.set(name, { name, dtype, shape: shape as number[], data: bytes.subarray(headerEnd + off[0], headerEnd + off[1]) });
  }
  return { tensors, metadata };
}

function entryOf(e: StateEntry): SafetensorsEntry {
  if (e.kind === 'int64') {
    const data = new Uint8Array(8);
    new DataView(data.buffer).setBigInt64(0, BigInt(e.counter.value), true);
    return { name: e.name, dtype: 'I64', shape: [], data };
  }
  const values = e.tensor.dataSync();
  return { name: e.name, dtype: 'F32', shape: e.tensor.shape.slice(), data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** The module's state (parameters and buffers) as safetensors bytes. */
export function moduleToSafetensors(module: Module, metadata?: Record<string, string>): Uint8Array {
  if (!(module instanceof Module)) throw new TypeError(`module: expected a Module, got ${describe(module)}`);
  return serializeSafetensors(module.stateDict().map(entryOf), metadata);
}

/** Writes the module's state to `path`. */
export function saveSafetensors(module: Module, path: string, metadata?: Record<string, string>): void {
  if (typeof path !== 'string') throw new TypeError(`path: expected a string, got ${describe(path)}`);
  fs.writeFileSync(path, moduleToSafetensors(module, metadata));
}

/**
 * Loads a state into the module: the names must match one to one (as PyTorch's strict
 * load_state_dict), with the same shapes. Returns the file's metadata.
 */
export function loadSafetensors(module: Module, source: string | Uint8Array): Record<string, string> | undefined {
  if (!(module instanceof Module)) throw new TypeError(`module: expected a Module, got ${describe(module)}`);
  const bytes = typeof source === 'string' ? new Uint8Array(fs.readFileSync(source)) : source;
  const { tensors, metadata } = parseSafetensors(bytes);
  const state = module.stateDict();
  const names = new Set(state.map((e) => e.name));
  const missing = state.filter((e) => !tensors.has(e.name)).map((e) => e.name);
  const unexpected = [...tensors.keys()].filter((k) => !names.has(k));
  if (missing.length > 0 || unexpected.length > 0)
    throw new RangeError(`source: the names do not match the module's: missing [${missing.join(', ')}], unexpected [${unexpected.join(', ')}]`);
  for (const e of state) {
    const t = tensors.get(e.name)!;
    const want = e.kind === 'int64' ? [] : e.tensor.shape;
    const wantType = e.kind === 'int64' ? 'I64' : 'F32';
    if (t.dtype !== wantType || t.shape.length !== want.length || t.shape.some((s, i) => s !== want[i]))
      throw new RangeError(`${e.name}: expected ${wantType} [${want.join(', ')}], got ${t.dtype} [${t.shape.join(', ')}]`);
  }
  for (const e of state) {
    const t = tensors.get(e.name)!;
    const copy = t.data.slice();
    if (e.kind === 'int64') e.counter.value = Number(new DataView(copy.buffer).getBigInt64(0, true));
    else e.tensor.storage.write(new Float32Array(copy.buffer), 0);
  }
  return metadata;
}
