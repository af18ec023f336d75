// The layer ops on CUDA tensors against the same ops on the CPU: forward values and every
// input's gradient, from the same random inputs and output gradients. The ops are device
// agnostic (their tensors' device picks the kernel); here the CUDA kernels of nn.cu run, on
// a GPU or on the emulated device (`npm run test:cuda-emulated`). Skipped without either.
import { describe, expect, it } from 'vitest';
import { cudaStatus, memory, nn, Tensor, tidy } from '../dist/index.js';
import { maxRelDiff } from './nn-reference';
import { randomNormal, rng } from './reference';

const { Parameter, ops } = nn;
const status = cudaStatus();
type Var = InstanceType<typeof nn.Variable>;

interface Input {
  data: Float32Array;
  shape: number[];
}

const input = (shape: number[], seed: number, scale = 1): Input => {
  const data = randomNormal(shape.reduce((a, b) => a * b, 1), rng(seed));
  for (let i = 0; i < data.length; i++) data[i] *= scale;
  return { data, shape };
};

/** The op on both devices: outputs within fwdTol, every input gradient within gradTol. */
function sameOnBothDevices(inputs: Input[], op: (ps: Var[]) => Var, seed: number, fwdTol = 1e-6, gradTol = 1e-5, scalarOnDevice = false) {
  tidy(() => {
    const run = (device: 'cpu' | 'cuda') => {
      const ps = inputs.map((x) => new Parameter(Tensor.from(x.data, x.shape, { device })));
      const y = op(ps);
      // Cross-entropy's loss is a host scalar (read back); the SupCon loss, like every other
      // output, stays on the device (read when asked: docs/ARCHITECTURE.md).
      expect(y.value.device).toBe(y.shape.length === 0 && !scalarOnDevice ? 'cpu' : device);
      const R = randomNormal(y.size, rng(seed));
      y.backward(Tensor.from(R, y.shape.slice(), { device: y.value.device }));
      return { y: y.value.dataSync(), grads: ps.map((p) => p.grad!.dataSync()) };
    };
    const cpu = run('cpu'), gpu = run('cuda');
    expect(gpu.y.every(Number.isFinite)).toBe(true);
    expect(maxRelDiff(gpu.y, cpu.y), 'forward').toBeLessThanOrEqual(fwdTol);
    cpu.grads.forEach((g, i) => {
      expect(gpu.grads[i].every(Number.isFinite), `input ${i} gradient finite`).toBe(true);
      expect(maxRelDiff(gpu.grads[i], g), `input ${i} gradient`).toBeLessThanOrEqual(gradTol);
    });
  });
}

describe.skipIf(!status.usable)('layer ops on CUDA tensors match the CPU', () => {
  it('relu, add, reshape and flatten', () => {
    sameOnBothDevices([input([3, 5, 7], 1), input([3, 5, 7], 2)], ([a, b]) => ops.flatten(ops.relu(ops.add(a, b))), 3, 0, 0);
    sameOnBothDevices([input([4, 6], 4)], ([a]) => ops.reshape(a, [2, -1, 3]), 5, 0, 0);
  });

  it('max pooling, overlapping windows and padding included, and global average pooling', () => {
    sameOnBothDevices([input([2, 3, 9, 7], 6)], ([x]) => ops.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }), 7, 0, 0);
    sameOnBothDevices([input([2, 3, 8, 8], 8)], ([x]) => ops.maxPool2d(x, { kernelSize: 2 }), 9, 0, 0);
    sameOnBothDevices([input([3, 5, 4, 6], 10)], ([x]) => ops.globalAvgPool(x), 11, 0, 1e-6);
  });

  it('batch norm in training (running statistics updated the same) and in evaluation, with and without the fused ReLU', () => {
    for (const [training, relu] of [[true, false], [false, false], [true, true], [false, true]]) {
      const stats = (device: 'cpu' | 'cuda') => [
        Tensor.from(randomNormal(5, rng(12)), [5], { device }),
        Tensor.from(Float32Array.from(randomNormal(5, rng(13)), (v) => 1 + Math.abs(v)), [5], { device }),
      ];
      const kept: Record<string, Float32Array[]> = {};
      for (const device of ['cpu', 'cuda'] as const) {
        tidy(() => {
          const [rm, rv] = stats(device);
          const x = new Parameter(Tensor.from(input([7, 5, 3, 2], 14, 3).data, [7, 5, 3, 2], { device }));
          const w = new Parameter(Tensor.from(input([5], 15).data, [5], { device }));
          const b = new Parameter(Tensor.from(input([5], 16).data, [5], { device }));
          const y = ops.batchNorm(x, w, b, rm, rv, { training, momentum: 0.3, relu });
          y.backward(Tensor.from(randomNormal(y.size, rng(17)), y.shape.slice(), { device }));
          kept[device] = [y.value.dataSync(), x.grad!.dataSync(), w.grad!.dataSync(), b.grad!.dataSync(), rm.dataSync(), rv.dataSync()];
        });
      }
      if (relu) expect(kept.cpu[0].some((v) => v === 0) && kept.cpu[0].some((v) => v > 0)).toBe(true);
      kept.cpu.forEach((want, k) => expect(maxRelDiff(kept.cuda[k], want), `${training} relu ${relu} output ${k}`).toBeLessThan(2e-5));
    }
  });

  it('L2 normalisation (a zero row included), cross-entropy and the SupCon layer', () => {
    const rows = input([9, 6], 18);
    rows.data.fill(0, 12, 18);
    sameOnBothDevices([rows], ([x]) => ops.l2Normalize(x), 19, 1e-6, 1e-5);
    const labels = Int32Array.from({ length: 9 }, (_, i) => (i * 7) % 5);
    sameOnBothDevices([input([9, 5], 20)], ([z]) => ops.crossEntropy(z, labels), 21, 1e-6, 1e-6);
    const classes = Int32Array.from({ length: 6 }, (_, i) => i % 3);
    sameOnBothDevices([input([12, 8], 22)], ([f]) => ops.supcon(f, classes, { views: 2, temperature: 0.2, normalize: true }), 23, 1e-5, 1e-4, true);
  });

  it('mixing devices in one op is a RangeError naming the operand', () => {
    tidy(() => {
      const a = new Parameter(Tensor.from(input([4], 24).data, [4]));
      const b = new Parameter(Tensor.from(input([4], 25).data, [4], { device: 'cuda' }));
      expect(() => ops.add(a, b)).toThrow(RangeError);
      expect(() => ops.add(a, b)).toThrow(/expected a tensor on 'cpu' like the other operands, got one on 'cuda'/);
    });
  });

  it('optimizer steps (SGD with momentum and Nesterov, LARS, AdamW, RMSProp) give the same parameters', () => {
    const makers: [string, (ps: InstanceType<typeof Parameter>[]) => InstanceType<typeof nn.Optimizer>][] = [
      ['sgd', (ps) => new nn.SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })],
      ['lars', (ps) => new nn.LARS(ps, { lr: 0.2, momentum: 0.9, weightDecay: 1e-4 })],
      ['adamw', (ps) => new nn.AdamW(ps, { lr: 0.01, weightDecay: 0.05 })],
      ['rmsprop', (ps) => new nn.RMSProp(ps, { lr: 0.01, momentum: 0.5 })],
    ];
    for (const [name, make] of makers) {
      const after: Record<string, Float32Array> = {};
      for (const device of ['cpu', 'cuda'] as const) {
        tidy(() => {
          const p = new Parameter(Tensor.from(input([33, 5], 26).data, [33, 5], { device }));
          const opt = make([p]);
          for (let step = 0; step < 3; step++) {
            p.zeroGrad();
            const y = ops.relu(p);
            y.backward(Tensor.from(randomNormal(y.size, rng(27 + step)), y.shape.slice(), { device }));
            opt.step();
          }
          after[device] = p.value.dataSync();
        });
      }
      expect(maxRelDiff(after.cuda, after.cpu), name).toBeLessThan(1e-5);
    }
  });

  it('a module moves to the GPU in place, and its state comes back unchanged', () => {
    const m = new nn.MLP(6, [8], 4);
    const before = m.stateDict().map((e) => (e.kind === 'float32' ? e.tensor.dataSync() : null));
    const held = m.parameters()[0].value;
    m.to('cuda');
    expect(held.device).toBe('cuda');
    expect(m.parameters().every((p) => p.value.device === 'cuda')).toBe(true);
    m.to('cpu');
    m.stateDict().forEach((e, k) => {
      if (e.kind === 'float32') expect(Array.from(e.tensor.dataSync())).toEqual(Array.from(before[k]!));
    });
    const bytes = memory().cuda.bytes;
    m.dispose();
    expect(memory().cuda.bytes).toBe(bytes);
  });
});
