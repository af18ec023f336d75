// Models: PyTorch names and sizes, torchvision initialisation, overfitting a small batch,
// thread-count independence, and safetensors round trips with the exact byte format.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nn, Tensor, tidy } from '../dist/index.js';
import { randomNormal, rng } from './reference';

const { ops } = nn;

function count(m: InstanceType<typeof nn.Module>) {
  return m.parameters().reduce((s, p) => s + p.size, 0);
}

describe('ResNet', () => {
  it.each([
    ['resnet18', nn.resnet18, 62, 122, 11689512],
    ['resnet34', nn.resnet34, 110, 218, 21797672],
    ['resnet50', nn.resnet50, 161, 320, 25557032],
  ] as const)('%s has torchvision\'s parameters, names and sizes', (_n, make, params, keys, size) => {
    const m = make({ numClasses: 1000, seed: 1 });
    expect(m.parameters().length).toBe(params);
    expect(m.stateDict().length).toBe(keys);
    expect(count(m)).toBe(size);
    const names = m.stateDict().map((e) => e.name);
    expect(names.slice(0, 7)).toEqual([
      'conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked',
      'layer1.0.conv1.weight',
    ]);
    expect(names).toContain('layer2.0.downsample.0.weight');
    expect(names).toContain('layer4.1.bn2.running_var');
    expect(names.slice(-2)).toEqual(['fc.weight', 'fc.bias']);
    m.dispose();
  });

  it('small-image stem: 3x3 stride 1, no max-pool; output [N, 512] without fc', () => {
    const m = nn.resnet18({ smallImages: true, seed: 2 });
    expect(m.conv1.weight.shape).toEqual([64, 3, 3, 3]);
    expect(m.maxpool).toBeNull();
    tidy(() => {
      const y = nn.noGrad(() => m.eval().forward(Tensor.from(randomNormal(2 * 3 * 8 * 8, rng(1)), [2, 3, 8, 8])));
      expect(y.shape).toEqual([2, 512]);
    });
    const big = nn.resnet50({ seed: 2 });
    expect(big.conv1.weight.shape).toEqual([64, 3, 7, 7]);
    expect(big.featureDim).toBe(2048);
    tidy(() => {
      const y = nn.noGrad(() => big.eval().forward(Tensor.from(randomNormal(1 * 3 * 32 * 32, rng(1)), [1, 3, 32, 32])));
      expect(y.shape).toEqual([1, 2048]);
    });
    m.dispose();
    big.dispose();
  });

  it('initialises as torchvision: kaiming normal (fan_out) convs, BN 1 and 0, fc uniform(1/sqrt(fan_in))', () => {
    const m = nn.resnet18({ numClasses: 10, seed: 3 });
    const w = m.stages[2].layers[0] as InstanceType<typeof nn.BasicBlock>;
    const x = w.conv2.weight.value.dataSync();  // [256, 256, 3, 3]: fan_out = 256 * 9
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const std = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
    expect(Math.abs(mean)).toBeLessThan(3 * std / Math.sqrt(x.length) + 1e-6);
    expect(std / Math.sqrt(2 / (256 * 9))).toBeCloseTo(1, 2);
    expect(Array.from(w.bn1.weight.value.dataSync()).every((v) => v === 1)).toBe(true);
    expect(Array.from(w.bn1.bias.value.dataSync()).every((v) => v === 0)).toBe(true);
    const fc = m.fc!.weight.value.dataSync(), bound = 1 / Math.sqrt(512);
    expect(Math.max(...fc)).toBeLessThanOrEqual(bound);
    expect(Math.max(...fc)).toBeGreaterThan(0.95 * bound);
    expect(Math.min(...fc)).toBeGreaterThanOrEqual(-bound);
    // Seeded: the same seed gives the same bits, another seed other values.
    const again = nn.resnet18({ numClasses: 10, seed: 3 }), other = nn.resnet18({ numClasses: 10, seed: 4 });
    expect(Array.from(again.conv1.weight.value.dataSync())).toEqual(Array.from(m.conv1.weight.value.dataSync()));
    expect(Array.from(other.conv1.weight.value.dataSync())).not.toEqual(Array.from(m.conv1.weight.value.dataSync()));
    for (const k of [m, again, other]) k.dispose();
  });
});

describe('training', () => {
  it('a model built inside tidy() keeps its parameters and buffers', () => {
    const m = tidy(() => new nn.Sequential(new nn.Linear(3, 2, { seed: 1 }), new nn.BatchNorm1d(2)));
    expect(m.stateDict().every((e) => e.kind === 'int64' || !e.tensor.isDisposed)).toBe(true);
    m.dispose();
    expect(m.parameters().every((p) => p.value.isDisposed)).toBe(true);
  });


  it('a small conv net overfits a small batch to near-zero loss', () => {
    const net = new nn.Sequential(
      new nn.Conv2d(3, 8, 3, { padding: 1, bias: false, seed: 1 }), new nn.BatchNorm2d(8), new nn.ReLU(),
      new nn.MaxPool2d(2), new nn.Conv2d(8, 16, 3, { stride: 2, padding: 1, seed: 2 }), new nn.ReLU(),
      new nn.GlobalAvgPool(), new nn.Linear(16, 5, { seed: 3 }),
    );
    const x = Tensor.from(randomNormal(10 * 3 * 8 * 8, rng(7)), [10, 3, 8, 8]);
    const labels = Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    const opt = new nn.AdamW(net, { lr: 0.03, weightDecay: 0 });
    let first = 0, last = 0;
    for (let step = 0; step < 300; step++) {
      last = tidy(() => {
        opt.zeroGrad();
        const loss = ops.crossEntropy(net.forward(x), labels);
        loss.backward();
        opt.step();
        return loss.item();
      });
      if (step === 0) first = last;
    }
    expect(first).toBeGreaterThan(1);
    expect(last).toBeLessThan(0.02);
    opt.dispose();
    net.dispose();
    x.dispose();
  });

  it('an MLP encoder with a projection head lowers the SupCon loss on a small batch', () => {
    const model = new nn.SupConModel(new nn.MLP(12, [32], 24, { seed: 5 }), new nn.ProjectionHead(24, { outDim: 16, seed: 6 }));
    const n = 8, v = 2;
    const x = Tensor.from(randomNormal(n * v * 12, rng(8)), [n * v, 12]);
    const labels = [0, 1, 2, 3, 0, 1, 2, 3];
    const opt = new nn.SGD(model, { lr: 0.05, momentum: 0.9 });
    const losses: number[] = [];
    for (let step = 0; step < 150; step++) {
      losses.push(tidy(() => {
        opt.zeroGrad();
        const loss = ops.supcon(model.forward(x), labels, { views: v, temperature: 0.1, baseTemperature: 0.1 });
        loss.backward();
        opt.step();
        return loss.item();
      }));
    }
    // Each anchor has 3 positives among 15 other rows; the infimum is log(3) ~ 1.0986
    // (positives at similarity 1, negatives far below at tau = 0.1).
    expect(losses[0]).toBeGreaterThan(2);
    expect(losses[losses.length - 1]).toBeLessThan(1.11);
    expect(losses[losses.length - 1]).toBeGreaterThan(Math.log(3) - 1e-4);
    opt.dispose();
    model.dispose();
    x.dispose();
  });

  it('gives the same bits on 1 and 2 threads (forward, backward, update)', () => {
    const run = (threads: number) => {
      nn.setNumThreads(threads);
      const m = nn.resnet18({ smallImages: true, numClasses: 3, seed: 9 });
      const x = Tensor.from(randomNormal(6 * 3 * 8 * 8, rng(10)), [6, 3, 8, 8]);
      const opt = new nn.SGD(m, { lr: 0.1, momentum: 0.9 });
      for (let i = 0; i < 2; i++)
        tidy(() => {
          opt.zeroGrad();
          ops.crossEntropy(m.forward(x), [0, 1, 2, 0, 1, 2]).backward();
          opt.step();
        });
      const out = m.stateDict().filter((e) => e.kind === 'float32').map((e) => (e as { tensor: Tensor }).tensor.dataSync());
      opt.dispose();
      m.dispose();
      x.dispose();
      nn.setNumThreads(undefined);
      return out;
    };
    const a = run(1), b = run(2);
    expect(a.length).toBe(b.length);
    a.forEach((t, i) => expect(Buffer.from(t.buffer).equals(Buffer.from(b[i].buffer)), `tensor ${i}`).toBe(true));
  });
});

describe('safetensors', () => {
  it('writes the exact format: u64 header length, space-padded JSON, raw little-endian data', () => {
    const lin = new nn.Linear(2, 1, { seed: 1 });
    lin.weight.value.storage.write(Float32Array.from([1.5, -2]), 0);
    lin.bias!.value.storage.write(Float32Array.from([0.25]), 0);
    const bytes = nn.moduleToSafetensors(lin);
    const json = '{"weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"bias":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}';
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
    expect(bytes.length).toBe(8 + padded.length + 12);
    expect(new DataView(bytes.buffer).getBigUint64(0, true)).toBe(BigInt(padded.length));
    expect(Buffer.from(bytes.subarray(8, 8 + padded.length)).toString('latin1')).toBe(padded);
    expect(Array.from(new Float32Array(bytes.slice(8 + padded.length).buffer))).toEqual([1.5, -2, 0.25]);
    lin.dispose();
  });

  it('round-trips a ResNet through a file (parameters, running statistics, num_batches_tracked)', () => {
    const a = nn.resnet18({ smallImages: true, numClasses: 10, seed: 11 });
    tidy(() => {
      a.forward(Tensor.from(randomNormal(4 * 3 * 8 * 8, rng(12)), [4, 3, 8, 8]));  // moves the running statistics
    });
    const file = path.join(os.tmpdir(), `supcon-nn-${process.pid}.safetensors`);
    nn.saveSafetensors(a, file, { arch: 'resnet18' });
    const b = nn.resnet18({ smallImages: true, numClasses: 10, seed: 99 });
    expect(nn.loadSafetensors(b, file)).toEqual({ arch: 'resnet18' });
    const sa = a.stateDict(), sb = b.stateDict();
    sa.forEach((e, i) => {
      const f = sb[i];
      expect(f.name).toBe(e.name);
      if (e.kind === 'int64' && f.kind === 'int64') expect(f.counter.value).toBe(1);
      else if (e.kind === 'float32' && f.kind === 'float32')
        expect(Buffer.from(f.tensor.dataSync().buffer).equals(Buffer.from(e.tensor.dataSync().buffer)), e.name).toBe(true);
    });
    const bn = a.stateDict().find((e) => e.name === 'bn1.running_mean');
    expect(bn && bn.kind === 'float32' && bn.tensor.dataSync().some((v) => v !== 0)).toBe(true);
    fs.unlinkSync(file);
    a.dispose();
    b.dispose();
  });

  it('reads a file laid out as another writer would (other key order, I64 counter)', () => {
    const bn = new nn.BatchNorm1d(2);
    const f32 = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);
    const i64 = new Uint8Array(8);
    new DataView(i64.buffer).setBigInt64(0, 7n, true);
    const bytes = nn.serializeSafetensors([
      { name: 'num_batches_tracked', dtype: 'I64', shape: [], data: i64 },
      { name: 'running_var', dtype: 'F32', shape: [2], data: f32([4, 5]) },
      { name: 'bias', dtype: 'F32', shape: [2], data: f32([0.5, 0.75]) },
      { name: 'weight', dtype: 'F32', shape: [2], data: f32([2, 3]) },
      { name: 'running_mean', dtype: 'F32', shape: [2], data: f32([-1, 1]) },
    ], { format: 'pt' });
    nn.loadSafetensors(bn, bytes);
    expect(bn.numBatchesTracked.value).toBe(7);
    expect(Array.from(bn.runningVar.dataSync())).toEqual([4, 5]);
    expect(Array.from(bn.weight.value.dataSync())).toEqual([2, 3]);
    bn.dispose();
  });

  it('rejects mismatched names or shapes and malformed bytes with clear errors', () => {
    const lin = new nn.Linear(2, 3, { seed: 1 });
    const other = new nn.Linear(3, 3, { seed: 1 });
    expect(() => nn.loadSafetensors(lin, nn.moduleToSafetensors(other))).toThrow(/weight: expected F32 \[3, 2\], got F32 \[3, 3\]/);
    const noBias = new nn.Linear(2, 3, { bias: false, seed: 1 });
    expect(() => nn.loadSafetensors(lin, nn.moduleToSafetensors(noBias))).toThrow(/missing \[bias\], unexpected \[\]/);
    expect(() => nn.parseSafetensors(new Uint8Array(4))).toThrow(/expected at least 8 bytes/);
    const bytes = nn.moduleToSafetensors(lin);
    expect(() => nn.parseSafetensors(bytes.subarray(0, bytes.length - 4))).toThrow(/data_offsets \[12,24\] are not a range inside the 20 data bytes|not a range inside/);
    const huge = bytes.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => nn.parseSafetensors(huge)).toThrow(/runs past the end/);
    for (const m of [lin, other, noBias]) m.dispose();
  });
});
