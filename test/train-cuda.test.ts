// One full training step on CUDA against the same step on the CPU: the small ConvNet and a
// ResNet-18 (small-image stem) with a projection head, SupCon loss on two views, SGD with
// momentum and weight decay. The loss and every parameter after the step agree within the
// precision's tolerance. On a GPU, or on the emulated device (`npm run test:cuda-emulated`).
import { describe, expect, it } from 'vitest';
import { cudaStatus, loadImageSet, makeEncoder, memory, nn, SupconTrainer, Tensor, tidy, TRAIN_DEFAULTS } from '../dist/index.js';
import type { Encoder, TrainConfig } from '../dist/index.js';
import { randomNormal, rng } from './reference';

const { ops } = nn;
type Precision = 'fp32' | 'tf32' | 'bf16';

/** Relative L2 distance of a from b. */
function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/** The loss of one step and the parameters after it, on `device`. */
function oneStep(make: () => Encoder, images: Float32Array, shape: number[], labels: Int32Array, device: 'cpu' | 'cuda', precision: Precision) {
  const encoder = make();
  const head = new nn.ProjectionHead(encoder.featureDim, { outDim: 32, seed: 3 });
  const model = new (class extends nn.Module {
    constructor() {
      super();
      this.registerModule('encoder', encoder);
      this.registerModule('head', head);
    }
    forward(x: InstanceType<typeof nn.Variable>) {
      return head.forward(encoder.forward(x));
    }
  })();
  const initial = model.namedParameters().map(([, p]) => p.value.dataSync() as Float32Array);
  model.to(device);
  const optimizer = new nn.SGD(model, { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  nn.setMatmulPrecision(device === 'cuda' ? precision : 'fp32');
  try {
    const loss = tidy(() => {
      const x = Tensor.from(images, shape, { device });
      optimizer.zeroGrad();
      const l = ops.supcon(model.forward(x), labels, { views: 2, temperature: 0.1 });
      l.backward();
      optimizer.step();
      return l.item();
    });
    // What the step changed: the parameters' updates.
    const params = model.namedParameters().map(([name, p], k) => [name, (p.value.dataSync() as Float32Array).map((v, i) => v - initial[k][i])] as const);
    return { loss, params };
  } finally {
    nn.setMatmulPrecision('fp32');
    optimizer.dispose();
    model.dispose();
  }
}

// fp32 products are exact FMA in another order: float32 rounding apart, every tensor's
// update to 1e-3 and the whole update to 1e-4. tf32 and bf16 round the products' inputs (10
// and 7 mantissa bits: each layer op then agrees to about 3e-4 and 2e-3, as the case table
// checks); through batch norm over a few images and the loss's differences of pulls, a
// step's update agrees to about 10% (tf32) and 30% (bf16) on these tiny batches (measured
// under the emulation: ConvNet 3.2e-2 / 8.5e-2, ResNet-18 1.1e-1 / 2.9e-1). The lower bound
// shows that the precision reached the kernels: an fp32 run would agree to 1e-5.
const TOLERANCE: Record<Precision, { loss: number; update: [number, number] }> = {
  fp32: { loss: 3e-5, update: [0, 1e-4] }, tf32: { loss: 5e-3, update: [1e-4, 0.2] }, bf16: { loss: 3e-2, update: [1e-3, 0.5] },
};

describe.skipIf(!cudaStatus().usable)('one training step on CUDA equals the step on the CPU', () => {
  const cases: [string, () => Encoder, number[]][] = [
    ['the ConvNet', () => makeEncoder('cnn', [1, 16, 16], 5), [8, 1, 16, 16]],
    ['ResNet-18 (small-image stem)', () => makeEncoder('resnet18', [3, 16, 16], 6), [4, 3, 16, 16]],
  ];
  for (const [name, make, shape] of cases) {
    const images = randomNormal(shape.reduce((a, b) => a * b, 1), rng(shape[0]));
    // Sample-major rows: images 2i and 2i + 1 are the two views of sample i.
    const labels = Int32Array.from({ length: shape[0] / 2 }, (_, i) => i % 2);
    const cpu = oneStep(make, images, shape, labels, 'cpu', 'fp32');
    for (const precision of ['fp32', 'tf32', 'bf16'] as const) {
      // On the emulated GPU (CI) one ResNet-18 step runs its kernels on the 2 CPU cores: 50 to
      // 63 s beside the other suites, against vitest's default of 60 s. Its own limit.
      it(`${name} in ${precision}`, { timeout: 180_000 }, () => {
        const gpu = oneStep(make, images, shape, labels, 'cuda', precision);
        const tol = TOLERANCE[precision];
        expect(Number.isFinite(gpu.loss)).toBe(true);
        expect(Math.abs(gpu.loss - cpu.loss) / Math.abs(cpu.loss)).toBeLessThan(tol.loss);
        expect(gpu.params.map(([n]) => n)).toEqual(cpu.params.map(([n]) => n));
        for (const [pname, update] of gpu.params) expect(update.every(Number.isFinite), pname).toBe(true);
        const all = (ps: typeof gpu.params) => Float32Array.from(ps.flatMap(([, u]) => Array.from(u)));
        const whole = relL2(all(gpu.params), all(cpu.params));
        console.log(`${name} ${precision}: loss ${gpu.loss} vs ${cpu.loss}; the whole update within ${whole.toExponential(2)}`);
        expect(whole).toBeGreaterThanOrEqual(tol.update[0]);
        expect(whole).toBeLessThan(tol.update[1]);
        if (precision === 'fp32')
          gpu.params.forEach(([pname, update], k) => expect(relL2(update, cpu.params[k][1]), pname).toBeLessThan(1e-3));
      });
    }
  }
});

describe.skipIf(!cudaStatus().usable)('the trainer on CUDA', () => {
  const train = loadImageSet('fashion-mnist', 'train', { limit: 64 });
  const test = loadImageSet('fashion-mnist', 'test', { limit: 32 });
  const config = (device: 'cpu' | 'cuda', more: Partial<TrainConfig> = {}): TrainConfig => ({
    ...TRAIN_DEFAULTS, encoder: 'cnn', batchSize: 16, epochs: 1, linearEpochs: 1, out: '', device, precision: 'fp32', ...more,
  });
  const make = (device: 'cpu' | 'cuda', more: Partial<TrainConfig> = {}) =>
    new SupconTrainer({ config: config(device, more), train, test, log: () => {} });

  it('with --loss-every 2 a SupCon step never waits for the GPU: only the read every second step does', () => {
    const t = make('cuda', { lossEvery: 2 }), cpu = make('cpu', { lossEvery: 2 });
    try {
      expect(t.stepsPerEpoch).toBe(4);
      // The first two steps: the one-time work (the image upload, first allocations), one read.
      expect(t.step(0, 0).loss).toBeNull();
      const first = t.step(0, 1);
      expect(first.lossSteps).toBe(2);
      const waits = () => memory().cuda.hostWaits;
      const w0 = waits();
      expect(t.step(0, 2).loss).toBeNull();
      expect(waits()).toBe(w0);
      // The epoch's last step reads both: one read-back each (the first waits, the other is ready).
      const read = t.step(0, 3);
      expect(waits() - w0).toBe(2);
      // The same means as the CPU trainer's (its views agree to 1e-4, docs/AUGMENT.md).
      const want = [0, 1, 2, 3].map((s) => cpu.step(0, s));
      const close = (a: number | null, b: number | null) => expect(Math.abs((a as number) - (b as number)) / Math.abs(b as number)).toBeLessThan(1e-3);
      close(first.loss, want[1].loss);
      close(read.loss, want[3].loss);
      expect(read.lossSteps).toBe(2);
    } finally {
      t.dispose();
      cpu.dispose();
    }
  }, 300_000);

  it('with a memory queue (--queue), takes the CPU trainer\'s steps once the queue joins the loss', () => {
    const cpu = make('cpu', { queue: 24, queueWarmup: 1 }), gpu = make('cuda', { queue: 24, queueWarmup: 1 });
    try {
      const close = (a: number, b: number) => expect(Math.abs(a - b) / Math.abs(b)).toBeLessThan(1e-3);
      close(gpu.step(0, 0).loss, cpu.step(0, 0).loss);
      // Step 1 contrasts the batch with the queue of step 0's 32 rows (24 samples' room: 48 rows).
      const a = gpu.step(0, 1).loss, b = cpu.step(0, 1).loss;
      close(a, b);
    } finally {
      cpu.dispose();
      gpu.dispose();
    }
  }, 300_000);

  it('takes the CPU trainer\'s steps (the same views, drawn on the device), and its checkpoints move between the devices', () => {
    const cpu = make('cpu'), gpu = make('cuda');
    expect(gpu.device).toBe('cuda');
    try {
      // The views agree to 1e-4 (docs/AUGMENT.md), so the losses to about that.
      const close = (a: number, b: number) => expect(Math.abs(a - b) / Math.abs(b)).toBeLessThan(1e-3);
      close(gpu.step(0, 0).loss, cpu.step(0, 0).loss);
      // A CUDA checkpoint continues on the CPU, and a CPU checkpoint on CUDA.
      const fromGpu = make('cpu'), fromCpu = make('cuda');
      try {
        fromGpu.loadState(gpu.saveState());
        fromCpu.loadState(cpu.saveState());
        close(fromGpu.step(0, 1).loss, gpu.step(0, 1).loss);
        close(fromCpu.step(0, 1).loss, cpu.step(0, 1).loss);
      } finally {
        fromGpu.dispose();
        fromCpu.dispose();
      }
    } finally {
      cpu.dispose();
      gpu.dispose();
    }
  }, 300_000);
});
