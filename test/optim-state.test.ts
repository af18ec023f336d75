// Optimizer checkpoints: stateDict() / loadStateDict() continue exactly where a run stopped.
import { describe, expect, it } from 'vitest';
import { nn, Tensor, tidy } from '../dist/index.js';
import { randomNormal, rng } from './reference';

function model(seed: number) {
  return new nn.Sequential(new nn.Linear(5, 7, { seed }), new nn.ReLU(), new nn.Linear(7, 3, { seed: seed + 1 }));
}

function trainSteps(m: InstanceType<typeof nn.Sequential>, opt: InstanceType<typeof nn.Optimizer>, from: number, to: number) {
  for (let s = from; s < to; s++) {
    tidy(() => {
      const x = Tensor.from(randomNormal(6 * 5, rng(100 + s)), [6, 5]);
      opt.zeroGrad();
      const loss = nn.ops.crossEntropy(m.forward(x), Int32Array.from([0, 1, 2, 0, 1, 2]));
      loss.backward();
      opt.lr = 0.1 / (1 + s);
      opt.step();
    });
  }
}

const weights = (m: InstanceType<typeof nn.Sequential>) => m.parameters().map((p) => Array.from(p.value.dataSync()));

describe.each([
  ['SGD with Nesterov momentum', (m: InstanceType<typeof nn.Sequential>) => new nn.SGD(m, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })],
  ['AdamW', (m: InstanceType<typeof nn.Sequential>) => new nn.AdamW(m, { lr: 0.01 })],
  ['RMSProp with momentum', (m: InstanceType<typeof nn.Sequential>) => new nn.RMSProp(m, { lr: 0.01, momentum: 0.5 })],
  ['LARS', (m: InstanceType<typeof nn.Sequential>) => new nn.LARS(m, { lr: 0.5, weightDecay: 1e-4 })],
])('%s', (_name, make) => {
  it('resumes from a state dict bit for bit', () => {
    const a = model(1);
    const optA = make(a);
    trainSteps(a, optA, 0, 7);

    const b = model(1);
    const optB = make(b);
    trainSteps(b, optB, 0, 3);
    const state = optB.stateDict();
    expect(state.stepCount).toBe(3);
    expect(state.slots.length).toBeGreaterThan(0);
    const c = model(99);
    c.parameters().forEach((p, i) => p.value.storage.write(b.parameters()[i].value.dataSync(), 0));
    const optC = make(c);
    optC.loadStateDict(state);
    trainSteps(c, optC, 3, 7);
    expect(weights(c)).toEqual(weights(a));
    for (const o of [optA, optB, optC]) o.dispose();
  });

  it('refuses a state from other parameters', () => {
    const m = model(1);
    const opt = make(m);
    expect(() => opt.loadStateDict({ stepCount: 1, lr: 0.1, slots: [['0.momentum', new Float32Array(3)]], counts: [] })).toThrow(/^state\.slots: '0\.momentum' does not fit/);
    expect(() => opt.loadStateDict({ stepCount: 1, lr: 0.1, slots: [['9.momentum', new Float32Array(35)]], counts: [] })).toThrow(RangeError);
    opt.dispose();
  });
});
