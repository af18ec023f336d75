// The run folder: config.json, metrics.jsonl (one JSON object a line), checkpoints/ and
// state.json, which names the latest complete checkpoint and how far the run had got.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic';
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
    const saved: SavedConfig = { format: 'supcon-run-1', config, createdAt: new Date().toISOString() };
    writeFileAtomic(this.configFile, JSON.stringify(saved, null, 2) + '\n');
    writeFileAtomic(this.metricsFile, '');
  }

  readConfig(): TrainConfig {
    if (!fs.existsSync(this.configFile)) throw new Error(`run folder '${this.dir}': no config.json (not a run folder?)`);
    const saved = JSON.parse(fs.readFileSync(this.configFile, 'utf8')) as SavedConfig;
    if (saved.format !== 'supcon-run-1') throw new Error(`${this.configFile}: unknown format '${String(saved.format)}'`);
    return saved.config;
  }

  readState(): RunState | null {
    if (!fs.existsSync(this.stateFile)) return null;
    return JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as RunState;
  }

  appendMetrics(record: MetricsRecord): void {
    fs.appendFileSync(this.metricsFile, JSON.stringify(record) + '\n');
  }

  readMetrics(): MetricsRecord[] {
    if (!fs.existsSync(this.metricsFile)) return [];
    return fs.readFileSync(this.metricsFile, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l, i) => {
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
      savedAt: new Date().toISOString(),
    };
    writeFileAtomic(this.stateFile, JSON.stringify(state, null, 2) + '\n');
    for (const f of fs.readdirSync(this.checkpointDir))
      if (f !== name && f.endsWith('.ckpt')) fs.rmSync(path.join(this.checkpointDir, f), { force: true });
    return state;
  }

  /** The latest checkpoint's bytes and position; metrics written after it are cut off. */
  restore(): { state: RunState; bytes: Uint8Array } {
    const state = this.readState();
    if (state === null) throw new Error(`run folder '${this.dir}': no checkpoint to resume from (no state.json)`);
    const file = path.join(this.dir, state.checkpoint);
    if (!fs.existsSync(file)) throw new Error(`${this.stateFile}: names ${state.checkpoint}, which is missing`);
    const size = fs.existsSync(this.metricsFile) ? fs.statSync(this.metricsFile).size : 0;
    if (size < state.metricsBytes)
      throw new Error(`${this.metricsFile}: ${size} bytes, shorter than the ${state.metricsBytes} the checkpoint recorded`);
    fs.truncateSync(this.metricsFile, state.metricsBytes);
    return { state, bytes: new Uint8Array(fs.readFileSync(file)) }; // a plain copy, not a pooled Buffer view
  }
}
