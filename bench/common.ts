// Shared pieces of the benchmarks: timing with tinybench, peak memory, result files.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Bench } from 'tinybench';

/** Median wall time (ms) of fn over `iterations` runs after one warm-up run. */
export async function medianMs(name: string, fn: () => void, iterations: number): Promise<number> {
  const bench = new Bench({ name, iterations, time: 1, warmupIterations: 1, warmupTime: 1, throws: true });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0].result;
  if (!('latency' in result)) throw new Error(`${name}: the benchmark did not complete`);
  return result.latency.p50;
}

function statusKb(field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) : NaN;
}

/**
 * Growth of the process's resident memory at its peak during fn, in bytes (Linux: the
 * high-water mark is reset through /proc/self/clear_refs). Run it in a fresh process: one
 * that has freed memory before may reuse it without growing. NaN where unsupported.
 */
export function peakMemoryGrowth(fn: () => void): number {
  if (process.platform !== 'linux') return NaN;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    return NaN;
  }
  const before = statusKb('VmRSS');
  fn();
  return (statusKb('VmHWM') - before) * 1024;
}

export function machine(): Record<string, unknown> {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  };
}

/** Writes <name>.json and <name>.md under bench/results/. */
export function writeResults(name: string, json: unknown, markdown: string): string[] {
  const dir = path.join(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const files = [path.join(dir, `${name}.json`), path.join(dir, `${name}.md`)];
  writeFileSync(files[0], JSON.stringify(json, null, 2) + '\n');
  writeFileSync(files[1], markdown);
  return files;
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}
