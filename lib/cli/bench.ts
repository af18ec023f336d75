// `supcon bench`: times the fused SupCon loss, forward and backward, on this machine.
import { resolveDevice } from '../device';
import { supconForward } from '../loss';
import { PhiloxStream } from '../data/philox';

export interface BenchResult {
  device: 'cpu' | 'cuda';
  n: number;
  views: number;
  dim: number;
  repeats: number;
  forwardMs: { median: number; min: number };
  backwardMs: { median: number; min: number };
  loss: number;
}

function stats(ms: number[]): { median: number; min: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0] };
}

export function runBench(options: { device: 'auto' | 'cpu' | 'cuda'; n: number; dim: number; repeats: number }): BenchResult {
  const device = resolveDevice(options.device, 'device');
  const { n, dim, repeats } = options;
  const views = 2;
  const rng = new PhiloxStream(1, 0, 0, 0x42454e43);
  const features = Float32Array.from({ length: n * views * dim }, () => rng.nextFloat() * 2 - 1);
  const labels = Int32Array.from({ length: n }, () => rng.nextBelow(10));
  const fwd: number[] = [], bwd: number[] = [];
  let loss = NaN;
  for (let r = 0; r <= repeats; r++) {
    const t0 = performance.now();
    const forward = supconForward({ data: features, shape: [n, views, dim] }, labels, { normalize: true, temperature: 0.1, device });
    const t1 = performance.now();
    forward.backward(1);
    const t2 = performance.now();
    loss = forward.loss;
    forward.dispose();
    if (r > 0) { fwd.push(t1 - t0); bwd.push(t2 - t1); } // the first round warms up
  }
  return { device, n, views, dim, repeats, forwardMs: stats(fwd), backwardMs: stats(bwd), loss };
}

export function formatBench(r: BenchResult): string {
  return [
    `SupCon loss on ${r.device}: n=${r.n} x ${r.views} views, d=${r.dim}, ${r.repeats} repeats (median, min)`,
    `  forward   ${r.forwardMs.median.toFixed(3)} ms  ${r.forwardMs.min.toFixed(3)} ms`,
    `  backward  ${r.backwardMs.median.toFixed(3)} ms  ${r.backwardMs.min.toFixed(3)} ms`,
    `  loss ${r.loss.toFixed(6)}`,
  ].join('\n');
}
