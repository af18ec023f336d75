// Atomic file replacement: write a temporary file beside the target, fsync it, rename it over
// the target, fsync the folder. A crash at any point leaves the old file or the new one,
// never a mix.
import fs from 'node:fs';
import path from 'node:path';

export type FileContent = string | Uint8Array | Iterable<Uint8Array>;

function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    // Some platforms (Windows) cannot open or fsync a folder; the rename is still atomic there.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EACCES' && code !== 'EINVAL') throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
}

/** Replaces `file` with `content` atomically (a string is written as UTF-8). */
export function writeFileAtomic(file: string, content: FileContent): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    if (typeof content === 'string') writeAll(fd, Buffer.from(content, 'utf8'));
    else if (content instanceof Uint8Array) writeAll(fd, content);
    else for (const chunk of content) writeAll(fd, chunk);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dir);
}

/** Temporary files that a crash during writeFileAtomic left in `dir` (safe to delete). */
export function leftoverTempFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.startsWith('.') && n.endsWith('.tmp')).map((n) => path.join(dir, n));
}

/** The writer's process id in a temporary file's name (.<name>.<pid>.<time>.tmp), or null. */
function writerPid(file: string): number | null {
  const m = /\.(\d+)\.[0-9a-z]+\.tmp$/.exec(path.basename(file));
  return m === null ? null : Number(m[1]);
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/**
 * Deletes the temporary files of writeFileAtomic in `dir` whose writer is no longer running
 * (killed mid-write); a live writer's file is left alone. Returns the files removed.
 */
export function removeStaleTempFiles(dir: string): string[] {
  const removed: string[] = [];
  for (const file of leftoverTempFiles(dir)) {
    const pid = writerPid(file);
    if (pid !== null && isAlive(pid)) continue;
    fs.rmSync(file, { force: true });
    removed.push(file);
  }
  return removed;
}
