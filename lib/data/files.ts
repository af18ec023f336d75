// Reading data files: whole-file reads, transparent gzip, errors that name the file.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { FileError } from '../io/file-error';

/** An error about a data file: the message starts with the file's path. */
export class DataFileError extends FileError {}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The file's bytes, gunzipped when the file is gzip (by its magic bytes, not its name). */
export function readMaybeGzip(file: string): Uint8Array {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    throw new DataFileError(file, `cannot read the file (${(e as Error).message})`);
  }
  if (!isGzip(raw)) {
    if (file.endsWith('.gz')) throw new DataFileError(file, 'the name ends in .gz but the file is not gzip data (no 1f 8b magic)');
    return raw;
  }
  try {
    return zlib.gunzipSync(raw);
  } catch (e) {
    throw new DataFileError(file, `gzip data is corrupt or truncated (${(e as Error).message})`);
  }
}

/** The first of `names` that exists in `dir`, or null. */
export function findFile(dir: string, names: readonly string[]): string | null {
  for (const name of names) {
    const p = path.join(dir, name);
    if (fs.existsSync(p) && fs.statSync(p).isFile()) return p;
  }
  return null;
}
