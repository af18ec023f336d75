// The run folder: config.json, metrics.jsonl (one JSON object a line), checkpoints/ and
// state.json, which names the latest complete checkpoint and how far the run had got.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { removeStaleTempFiles, writeFileAtomic } from '../io/atomic';
import { FileError } from '../io/file-error';
import type { TrainConfig } from './args';

export interface RunState {
  /** The next step to run: epoch and step within it. */
  epoch: number;
  step: number;
  /** Checkpoint file, relative to the run folder. */
  checkpoint: string;
  /** Length of metrics.jsonl when the checkpoint was taken (resuming cuts it back to this). */
  metricsBytes: number;
  reason: 'epoch' | 'interrupt';
  savedAt: string;
  /** SHA-256 of the checkpoint file, hex (absent in run folders written before it was kept). */
  sha256?: string;
}

/** An error about a file of a run folder: the message starts with the file's path. */
export class RunFileError extends FileError {}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A JSON file's content, or an error that names the file (missing, unreadable, not JSON). */
function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RunFileError(file, code === 'ENOENT' ? 'missing' : `cannot be read (${code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new RunFileError(file, `is not valid JSON (${(e as Error).message}; truncated or damaged?)`);
  }
}

export interface SavedConfig {
  format: 'supcon-run-1';
  config: TrainConfig;
  createdAt: string;
}

export type MetricsRecord = Record<string, unknown> & { type: string };

export class RunFolder {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  get configFile() { return path.join(this.dir, 'config.json'); }
  get metricsFile() { return path.join(this.dir, 'metrics.jsonl'); }
  get stateFile() { return path.join(this.dir, 'state.json'); }
  get reportFile() { return path.join(this.dir, 'report.html'); }
  get checkpointDir() { return path.join(this.dir, 'checkpoints'); }

  /** Throws when the folder already holds a run. */
  checkNew(): void {
    if (fs.existsSync(this.configFile))
      throw new Error(`run folder '${this.dir}' already holds a run; pass --resume to continue it, or another --out`);
  }

  /** Starts a new run: the folder must not hold another run. */
  create(config: TrainConfig): void {
    this.checkNew();
    fs.mkdirSync(this.checkpointDir, { recursive: true });
    this.removeStaleTempFiles();
    const saved: SavedConfig = { format: 'supcon-run-1', config, createdAt: new Date().toISOString() };
    writeFileAtomic(this.configFile, JSON.stringify(saved, null, 2) + '\n');
    writeFileAtomic(this.metricsFile, '');
  }

  readConfig(): TrainConfig {
    if (!fs.existsSync(this.configFile)) throw new Error(`run folder '${this.dir}': no config.json (not a run folder?)`);
    const saved = readJson(this.configFile) as SavedConfig | null;
    if (saved === null || typeof saved !== 'object' || Array.isArray(saved))
      throw new RunFileError(this.configFile, 'expected a JSON object');
    if (saved.format !== 'supcon-run-1') throw new Error(`${this.configFile}: unknown format '${String(saved.format)}'`);
    if (saved.config === null || typeof saved.config !== 'object') throw new RunFileError(this.configFile, 'has no config object');
    return saved.config;
  }

  /**
   * state.json, checked: its fields have their types, and the checkpoint it names is a file
   * inside this folder's checkpoints/ (a name like '../../etc/hostname' is refused).
   */
  readState(): RunState | null {
    if (!fs.existsSync(this.stateFile)) return null;
    const s = readJson(this.stateFile) as Record<string, unknown> | null;
    const bad = (what: string) => new RunFileError(this.stateFile, what);
    if (s === null || typeof s !== 'object' || Array.isArray(s)) throw bad('expected a JSON object');
    for (const key of ['epoch', 'step', 'metricsBytes'] as const)
      if (!Number.isSafeInteger(s[key]) || (s[key] as number) < 0) throw bad(`${key}: expected an integer >= 0, got ${JSON.stringify(s[key])}`);
    if (s.reason !== 'epoch' && s.reason !== 'interrupt') throw bad(`reason: expected 'epoch' or 'interrupt', got ${JSON.stringify(s.reason)}`);
    if (s.sha256 !== undefined && !(typeof s.sha256 === 'string' && /^[0-9a-f]{64}$/.test(s.sha256)))
      throw bad(`sha256: expected 64 hex digits, got ${JSON.stringify(s.sha256)}`);
    if (typeof s.checkpoint !== 'string') throw bad(`checkpoint: expected a path string, got ${JSON.stringify(s.checkpoint)}`);
    this.checkpointFile(s.checkpoint, this.stateFile);
    return s as unknown as RunState;
  }

  /** The absolute path of a checkpoint named relative to the folder, confined to checkpoints/. */
  checkpointFile(name: string, source = this.stateFile): string {
    const file = path.resolve(this.dir, name);
    if (path.isAbsolute(name) || path.dirname(file) !== this.checkpointDir || !file.endsWith('.ckpt'))
      throw new RunFileError(source, `checkpoint: '${name}' is not a .ckpt file directly inside ${this.checkpointDir}; refusing to read outside the run folder`);
    return file;
  }

  /**
   * The checkpoint that state.json names, checked against the SHA-256 recorded with it. A
   * missing or damaged file is a clear error; nothing in the folder changes.
   */
  readCheckpoint(state: RunState): Uint8Array {
    const file = this.checkpointFile(state.checkpoint);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(fs.readFileSync(file)); // a plain copy, not a pooled Buffer view
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new RunFileError(this.stateFile, code === 'ENOENT'
        ? `names the checkpoint ${state.checkpoint}, which is missing`
        : `names the checkpoint ${state.checkpoint}, which cannot be read (${code ?? (e as Error).message})`);
    }
    if (state.sha256 !== undefined && sha256(bytes) !== state.sha256)
      throw new RunFileError(file, `does not match the SHA-256 that state.json recorded for it (${bytes.length} bytes): the checkpoint is damaged`);
    return bytes;
  }

  /**
   * Removes temporary files that a process killed during an atomic write left in the folder
   * and in checkpoints/ (files of live processes are left alone). Returns what was removed.
   */
  removeStaleTempFiles(): string[] {
    const removed: string[] = [];
    for (const d of [this.dir, this.checkpointDir]) if (fs.existsSync(d)) removed.push(...removeStaleTempFiles(d));
    return removed;
  }

  appendMetrics(record: MetricsRecord): void {
    this.#applyPendingCut();
    fs.appendFileSync(this.metricsFile, JSON.stringify(record) + '\n');
  }

  /** Cuts metrics.jsonl back to the restored checkpoint's length, once the run goes on. */
  #applyPendingCut(): void {
    if (this.#pendingCut === null) return;
    fs.truncateSync(this.metricsFile, this.#pendingCut);
    this.#pendingCut = null;
  }

  #pendingCut: number | null = null;

  readMetrics(): MetricsRecord[] {
    if (!fs.existsSync(this.metricsFile)) return [];
    const raw = fs.readFileSync(this.metricsFile);
    const text = (this.#pendingCut === null ? raw : raw.subarray(0, this.#pendingCut)).toString('utf8');
    return text.split('\n').filter((l) => l.trim() !== '').map((l, i) => {
      try {
        return JSON.parse(l) as MetricsRecord;
      } catch {
        throw new Error(`${this.metricsFile}: line ${i + 1} is not JSON`);
      }
    });
  }

  /**
   * Writes a checkpoint: the state bytes atomically, then state.json atomically. A crash
   * before state.json is replaced leaves the previous checkpoint in force. Older checkpoint
   * files are removed afterwards.
   */
  saveCheckpoint(bytes: Uint8Array, epoch: number, step: number, reason: RunState['reason']): RunState {
    this.#applyPendingCut();
    const fd = fs.openSync(this.metricsFile, 'r+');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    const name = reason === 'epoch'
      ? `epoch-${String(epoch).padStart(4, '0')}.ckpt`
      : `epoch-${String(epoch + 1).padStart(4, '0')}-step-${String(step).padStart(6, '0')}.ckpt`; // epoch N, after step S (from 1)
    const rel = path.join('checkpoints', name);
    fs.mkdirSync(this.checkpointDir, { recursive: true });
    writeFileAtomic(path.join(this.dir, rel), bytes);
    const state: RunState = {
      epoch, step, checkpoint: rel, metricsBytes: fs.statSync(this.metricsFile).size, reason,
      savedAt: new Date().toISOString(), sha256: sha256(bytes),
    };
    writeFileAtomic(this.stateFile, JSON.stringify(state, null, 2) + '\n');
    for (const f of fs.readdirSync(this.checkpointDir))
      if (f !== name && f.endsWith('.ckpt')) fs.rmSync(path.join(this.checkpointDir, f), { force: true });
    return state;
  }

  /**
   * The latest checkpoint's bytes and position, everything checked first (state.json, the
   * checkpoint's path and SHA-256, the metrics length): a resume that fails here or in the
   * trainer's loadState changes nothing. Metrics written after the checkpoint are cut off at
   * the run's first write (or read) of metrics after this, not before.
   */
  restore(): { state: RunState; bytes: Uint8Array } {
    const state = this.readState();
    if (state === null) throw new Error(`run folder '${this.dir}': no checkpoint to resume from (no state.json)`);
    const bytes = this.readCheckpoint(state);
    const size = fs.existsSync(this.metricsFile) ? fs.statSync(this.metricsFile).size : 0;
    if (size < state.metricsBytes)
      throw new Error(`${this.metricsFile}: ${size} bytes, shorter than the ${state.metricsBytes} the checkpoint recorded`);
    this.removeStaleTempFiles();
    this.#pendingCut = state.metricsBytes;
    return { state, bytes };
  }
}
