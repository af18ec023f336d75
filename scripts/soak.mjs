#!/usr/bin/env node
// The RSS soak: the same call many times, RSS sampled as it goes. Memory that a long run
// keeps must be bounded: RSS after `calls` calls stays within `--bound` MB of its level after
// the first 1,000 (the warm-up: V8's heap, the thread pool, the caches reach their size).
//
//   node scripts/soak.mjs [--mode loss|forward|augment] [--calls 20000] [--n 256] [--bound 20] [--yield 0]
//
// loss: supconLoss on a Float32Array (n x 2 views x 128); forward: a Linear + ReLU + L2
// normalisation forward and dispose on tensors of varying batch sizes; augment: a SimCLR
// pipeline on n 3 x 32 x 32 images. Prints one line per 1,000 calls and a verdict; exits 1
// when the bound is passed.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const lib = require(path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'dist', 'index.js'));
const { Tensor, nn, memory, supconLoss, augment, pipelines } = lib;

const o = { mode: 'loss', calls: 20000, n: 256, bound: 20, yield: 0 };
const argv = process.argv.slice(2);
for (let k = 0; k < argv.length; k += 2) {
  const key = argv[k].replace(/^--/, '');
  if (!(key in o)) throw new Error(`soak: unknown option ${argv[k]}`);
  o[key] = key === 'mode' ? argv[k + 1] : Number(argv[k + 1]);
}

let seed = 1;
const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296) - 0.5;
const d = 128;
const features = Float32Array.from({ length: o.n * 2 * d }, random);
const labels = Int32Array.from({ length: o.n }, (_, i) => i % 10);
const layer = new nn.Linear(d, 64);
const images = Uint8Array.from({ length: o.n * 3 * 32 * 32 }, (_, i) => (i * 2654435761) >>> 24);
const pipeline = pipelines.simclr({ size: 32 });

function once(i) {
  switch (o.mode) {
    case 'loss':
      supconLoss({ data: features, shape: [o.n, 2, d] }, labels, { temperature: 0.1, normalize: true });
      return;
    case 'forward': {
      const rows = 16 + ((i * 37) % o.n); // varying sizes, as a last smaller batch or an eval pass
      const x = Tensor.from(features.subarray(0, rows * d), [rows, d]);
      lib.tidy(() => nn.noGrad(() => { nn.ops.l2Normalize(nn.ops.relu(layer.forward(x))); }));
      x.dispose();
      return;
    }
    case 'augment': {
      const out = augment({ data: images, shape: [o.n, 3, 32, 32] }, pipeline, { seed: i, views: 2, output: 'tensor' });
      out.dispose();
      return;
    }
    default:
      throw new Error(`soak: --mode expects loss, forward or augment, got ${o.mode}`);
  }
}

const mb = (b) => (b / 2 ** 20).toFixed(1);
// RSS is sampled every 10 calls. In a loop that never yields it swings by tens of MB as V8
// frees the results (the 256 KB gradient arrays) in batches, so a single sample can land
// anywhere in that swing: the level of a stretch of calls is its highest sample, and the
// soak compares the level of each 1,000 calls with the level of calls 500 to 1,000 (after
// the thread pool, the caches and V8's heap have reached their size).
let atWarm = 0, peak = 0, windowPeak = 0;
const t0 = Date.now();
for (let i = 0; i < o.calls; i++) {
  once(i);
  // --yield k: a turn of the event loop every k calls, as a training loop takes each step
  // (Node-API finalizers and V8's idle-time work run there).
  if (o.yield > 0 && (i + 1) % o.yield === 0) await new Promise((r) => setImmediate(r));
  if ((i + 1) % 10 === 0) {
    const rss = process.memoryUsage().rss;
    windowPeak = Math.max(windowPeak, rss);
    if (i + 1 > 500 && i + 1 <= 1000) atWarm = Math.max(atWarm, rss);
    if (i + 1 > 1000) peak = Math.max(peak, rss);
  }
  if ((i + 1) % 1000 === 0) {
    const u = process.memoryUsage();
    const m = memory();
    console.log(`soak ${o.mode}: ${i + 1} calls, RSS ${mb(u.rss)} MB (highest of the last 1,000: ${mb(windowPeak)} MB), tensors ${m.numTensors}, live ${mb(m.cpu.bytes)} MB, cached ${mb(m.cpu.cachedBytes)} MB, V8 heap ${mb(u.heapTotal)} MB, array buffers ${mb(u.arrayBuffers)} MB`);
    windowPeak = 0;
  }
}
const final = process.memoryUsage().rss;
const growth = (Math.max(peak, final) - atWarm) / 2 ** 20;
console.log(`soak ${o.mode}: n ${o.n}, ${o.calls} calls in ${((Date.now() - t0) / 1000).toFixed(1)} s; RSS level of calls 500-1,000 ${mb(atWarm)} MB, ` +
  `highest after it ${mb(peak)} MB, final ${mb(final)} MB: growth ${growth.toFixed(1)} MB (bound ${o.bound} MB) ${growth <= o.bound ? 'ok' : 'FAILED'}`);
process.exitCode = growth <= o.bound ? 0 : 1;
