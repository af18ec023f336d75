// The IDX format of MNIST and Fashion-MNIST: magic 00 00 <type> <dims>, then <dims> big-endian
// uint32 sizes, then the data. Only unsigned bytes (type 0x08) carry images and labels.
import { describe } from '../check';
import { DataFileError, findFile, readMaybeGzip } from './files';
import type { ImageSet } from './image-set';

export interface IdxArray {
  readonly dims: number[];
  /** The data after the header (a view into the file's bytes). */
  readonly data: Uint8Array;
}

const UBYTE = 0x08;
const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte', 0x09: 'signed byte', 0x0b: 'int16', 0x0c: 'int32', 0x0d: 'float32', 0x0e: 'float64',
};

function hex(b: number): string {
  return '0x' + b.toString(16).padStart(2, '0');
}

/** Parses IDX bytes; `file` names the source in errors. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes: expected a Uint8Array, got ${describe(bytes)}`);
  if (typeof file !== 'string') throw new TypeError(`file: expected a string (the source's name), got ${describe(file)}`);
  if (bytes.length < 4) throw new DataFileError(file, `not an IDX file: ${bytes.length} bytes, shorter than the 4-byte magic`);
  if (bytes[0] !== 0 || bytes[1] !== 0)
    throw new DataFileError(file, `not an IDX file: the magic must start with 00 00, found ${hex(bytes[0])} ${hex(bytes[1])}`);
  const type = bytes[2], rank = bytes[3];
  if (type !== UBYTE) {
    const name = TYPE_NAMES[type];
    throw new DataFileError(file, `IDX data type ${hex(type)}${name ? ` (${name})` : ' (unknown)'} is not supported; expected 0x08 (unsigned byte)`);
  }
  if (rank < 1 || rank > 4) throw new DataFileError(file, `IDX header has ${rank} dimensions; expected 1 to 4`);
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes)
    throw new DataFileError(file, `truncated IDX header: ${rank} dimensions need ${headerBytes} bytes, the file has ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const have = bytes.length - headerBytes;
  if (have < count)
    throw new DataFileError(file, `truncated: the header says [${dims.join(', ')}] = ${count} bytes of data, the file has ${have}`);
  if (have > count)
    throw new DataFileError(file, `the header says [${dims.join(', ')}] = ${count} bytes of data, but the file has ${have} (${have - count} extra bytes)`);
  return { dims, data: bytes.subarray(headerBytes) };
}

/** Reads an IDX file, plain or gzip. */
export function readIdx(file: string): IdxArray {
  if (typeof file !== 'string') throw new TypeError(`file: expected a path string, got ${describe(file)}`);
  return parseIdx(readMaybeGzip(file), file);
}

/** Images [n, h, w] and labels [n] from two IDX files, checked against each other. */
export function readIdxPair(imagesFile: string, labelsFile: string): ImageSet {
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  if (images.dims.length !== 3)
    throw new DataFileError(imagesFile, `expected images with 3 dimensions [n, height, width], the header has [${images.dims.join(', ')}]`);
  if (labels.dims.length !== 1)
    throw new DataFileError(labelsFile, `expected labels with 1 dimension [n], the header has [${labels.dims.join(', ')}]`);
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n)
    throw new DataFileError(labelsFile, `has ${labels.dims[0]} labels but ${imagesFile} has ${n} images`);
  if (n === 0) throw new DataFileError(imagesFile, 'holds no images');
  if (h === 0 || w === 0) throw new DataFileError(imagesFile, `images of size ${h} x ${w} hold no pixels`);
  const out = new Int32Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) {
    out[i] = labels.data[i];
    if (out[i] > max) max = out[i];
  }
  return {
    images: new Uint8Array(images.data),
    shape: [n, 1, h, w],
    labels: out,
    numClasses: max + 1,
    classNames: null,
  };
}

export type Split = 'train' | 'test';

function candidates(prefix: string, kind: 'images-idx3' | 'labels-idx1'): string[] {
  const dotted = kind.replace('-idx', '.idx');
  return [`${prefix}-${kind}-ubyte`, `${prefix}-${kind}-ubyte.gz`, `${prefix}-${dotted}-ubyte`, `${prefix}-${dotted}-ubyte.gz`];
}

const PREFIX: Record<Split, string> = { train: 'train', test: 't10k' };

/** The IDX files of a split in `dir` (the MNIST names: train-* and t10k-*), or null. */
export function findIdxFiles(dir: string, split: Split): { images: string; labels: string } | null {
  const images = findFile(dir, candidates(PREFIX[split], 'images-idx3'));
  const labels = findFile(dir, candidates(PREFIX[split], 'labels-idx1'));
  return images && labels ? { images, labels } : null;
}

/** The expected file names, for error messages. */
export function idxFileNames(split: Split): string[] {
  return [`${PREFIX[split]}-images-idx3-ubyte[.gz]`, `${PREFIX[split]}-labels-idx1-ubyte[.gz]`];
}

/** Encodes an IDX file of unsigned bytes (used for the dataset cache and by tests). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  if (!Array.isArray(dims) || dims.length < 1 || dims.length > 255 || !dims.every((d) => Number.isSafeInteger(d) && d >= 0 && d <= 0xffffffff))
    throw new RangeError(`dims: expected 1 to 255 integers in [0, 2^32), got ${describe(dims)}`);
  if (!(data instanceof Uint8Array)) throw new TypeError(`data: expected a Uint8Array, got ${describe(data)}`);
  let count = 1;
  for (const d of dims) count *= d;
  if (count !== data.length) throw new RangeError(`data: expected ${count} bytes for dims [${dims.join(', ')}], got ${data.length}`);
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = UBYTE;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
