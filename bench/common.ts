// Timing with tinybench and peak memory, for the CPU benchmarks.
import { readFileSync, writeFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import { fmaPeakGflops } from '../lib/index';

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


/** CPU seconds (user + system) of this process spent in fn, and the wall seconds. */
export function cpuAndWall(fn: () => void): { cpu: number; wall: number } {
  const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  fn();
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1e6, wall: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/**
 * The FMA peak on `threads` threads, best of `windows` short windows (the machine may be
 * shared): GFLOP per wall second, and GFLOP per CPU second (which other processes on the
 * machine do not lower).
 */
export function fmaPeak(threads: number, windows: number): { wall: number; cpu: number } {
  let wall = 0, cpu = 0;
  for (let i = 0; i < windows; i++) {
    let g = 0;
    const m = cpuAndWall(() => {
      g = fmaPeakGflops(threads, 0.2);
    });
    wall = Math.max(wall, g);
    cpu = Math.max(cpu, (g * m.wall) / m.cpu);
  }
  return { wall, cpu };
}
