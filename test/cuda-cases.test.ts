// The case table of the GPU check and of the emulated CUDA run (bench/cuda-cases.ts): that
// it covers what it claims, that its comparisons can fail, and that the check script runs
// its GPU path on the CPU (--dry-run, --emulated --dry-run) and refuses --emulated on an
// addon that is not the emulated build.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AUGMENT_OPS, AUGMENT_SHARED_LIMIT, augmentCases, augmentScratchBytes, backwardVariant, convCases, convOutput, gemmCases,
  kernelBaseName, linearCases, lossCases, lossLastBlockRows, lossWork, median, nnCases, PRECISIONS, relL2, RMS_FLOOR,
  sourceKernels, TILE, TOLERANCE,
} from '../bench/cuda-cases';
import type { ConvDescOfCase, LossCase, NnCase, Scale } from '../bench/cuda-cases';
import { native } from '../dist/lib/native.js';

const repo = path.join(__dirname, '..');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-cuda-cases-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const scales: Scale[] = ['full', 'small'];

describe.each(scales)('the loss cases (%s sizes)', (scale) => {
  const cases = lossCases(scale);
  const options: [string, (c: LossCase) => unknown, unknown[]][] = [
    ['variant', (c) => c.options.variant, ['out', 'in']],
    ['contrastMode', (c) => c.options.contrastMode, ['all', 'one']],
    ['denominator', (c) => c.options.denominator, ['all', 'onePositive', 'onlyNegatives']],
    ['positives', (c) => c.positives, ['labels', 'simclr', 'mask']],
    ['normalize', (c) => c.options.normalize, [true, false]],
    ['exclude', (c) => c.options.excludeAnchorsWithoutPositives, [true, false]],
    ['backward kernel', (c) => backwardVariant(c.d), ['registers, d <= 64', 'registers, d <= 128', 'registers, d <= 256', 'global memory, d > 256']],
  ];

  it('every precision meets every value of every option', () => {
    for (const precision of PRECISIONS)
      for (const [name, of, values] of options) {
        const seen = new Set(cases.filter((c) => c.precision === precision).map(of));
        for (const v of values) expect(seen.has(v), `${precision} x ${name} = ${v}`).toBe(true);
      }
  });

  it('covers the pairs that select different kernel code', () => {
    const pairs = (a: (c: LossCase) => unknown, b: (c: LossCase) => unknown) => new Set(cases.map((c) => `${a(c)}|${b(c)}`));
    expect(pairs((c) => c.options.variant, (c) => c.options.denominator).size).toBe(6);
    expect(pairs((c) => c.positives, (c) => c.options.contrastMode).size).toBe(6);
    expect(pairs((c) => backwardVariant(c.d), (c) => c.options.normalize).size).toBe(8);
  });

  it('has the feature widths, tile edges and partial blocks of the issue', () => {
    const ds = new Set(cases.map((c) => c.d));
    for (const d of [1, 3, 64, 129, 300, 2048]) expect(ds.has(d), `d = ${d}`).toBe(true);
    expect(cases.some((c) => (c.n * c.v) % TILE !== 0)).toBe(true);
    expect(cases.some((c) => (c.n * c.v) % TILE === 0)).toBe(true);
    expect(cases.some((c) => c.n * c.v < TILE)).toBe(true);
    const maskPartial = (mode: string) => cases.some((c) => c.positives === 'mask' && c.options.contrastMode === mode && lossLastBlockRows(c) > 0);
    expect(maskPartial('all')).toBe(true);
    expect(maskPartial('one')).toBe(true);
    expect(cases.some((c) => c.d === 1 && c.options.normalize)).toBe(true);
    // Normalised rows whose norm passes the float32 maximum (the loss is scale-invariant).
    expect(cases.some((c) => c.huge && c.options.normalize)).toBe(true);
  });

  it('has a contrast set in each form, with every kind of positives, the gradient on and off, rows on the host and the device', () => {
    const withSet = cases.filter((c) => c.contrast !== null);
    for (const form of ['queue', 'global', 'disjoint']) expect(withSet.some((c) => c.contrast!.form === form), form).toBe(true);
    for (const positives of ['labels', 'simclr', 'mask']) expect(withSet.some((c) => c.positives === positives), positives).toBe(true);
    for (const flag of [true, false]) {
      expect(withSet.some((c) => c.contrast!.gradient === flag)).toBe(true);
      expect(withSet.some((c) => c.contrast!.hostRows === flag)).toBe(true);
      expect(withSet.some((c) => c.options.normalize === flag)).toBe(true);
    }
    for (const mode of ['all', 'one']) expect(withSet.some((c) => c.options.contrastMode === mode)).toBe(true);
    expect(new Set(withSet.map((c) => backwardVariant(c.d))).size).toBe(4);
    // More contrast columns than anchors, over several tiles, in the queue form.
    expect(withSet.some((c) => c.contrast!.form === 'queue' && c.contrast!.extra > 2 * c.n * c.v && c.contrast!.extra > 2 * TILE)).toBe(true);
  });

  it('is a covering design, not the cross product, with unique ids and one input per configuration', () => {
    expect(cases.length).toBeLessThan(3 * 2 * 2 * 3 * 3 * 2 * 2);
    expect(new Set(cases.map((c) => c.id)).size).toBe(cases.length);
    for (const c of cases) {
      const same = cases.filter((o) => o.seed === c.seed);
      expect(same.map((o) => o.precision).sort()).toEqual([...PRECISIONS].sort());
      for (const o of same) expect([o.n, o.v, o.d, o.options]).toEqual([c.n, c.v, c.d, c.options]);
    }
  });
});

it('the small sizes keep the emulated run small and the full sizes are larger', () => {
  const work = (s: Scale) => lossCases(s).reduce((sum, c) => sum + lossWork(c.n, c.v, c.d, c.options.contrastMode, c.options.denominator, c.contrast).flops, 0);
  expect(work('small')).toBeLessThan(2e9);
  expect(work('full')).toBeGreaterThan(50 * work('small'));
  // The same configurations at both scales, so the emulated run checks what the GPU run checks.
  expect(lossCases('small').map((c) => c.id)).toEqual(lossCases('full').map((c) => c.id));
  expect(gemmCases('small').map((c) => c.id)).toEqual(gemmCases('full').map((c) => c.id));
  expect(augmentCases('small').map((c) => c.id)).toEqual(augmentCases('full').map((c) => c.id));
  expect(nnCases('small').map((c) => c.id)).toEqual(nnCases('full').map((c) => c.id));
  const nnWork = (s: Scale) => nnCases(s).reduce((sum, c) => sum + c.work.flops, 0);
  expect(nnWork('small')).toBeLessThan(5e7);  // the emulator runs every thread of every block
  expect(nnWork('full')).toBeGreaterThan(50 * nnWork('small'));
});

describe.each(scales)('the layer cases (%s sizes)', (scale) => {
  const convs = convCases(scale), linears = linearCases(scale);
  const desc = (c: NnCase) => c.params as unknown as ConvDescOfCase;
  const has = (c: NnCase, name: string) => c.tensors.some((t) => t.name === name);
  const names = (c: NnCase) => c.tensors.map((t) => t.name).sort().join(',');

  it('every conv geometry the issue names meets every precision and every pass', () => {
    for (const precision of PRECISIONS) {
      const mine = convs.filter((c) => c.precision === precision);
      const any = (f: (d: ConvDescOfCase, c: NnCase) => boolean) => mine.some((c) => f(desc(c), c));
      expect(any((d) => d.strideH === 1) && any((d) => d.strideH === 2) && any((d) => d.strideH !== d.strideW)).toBe(true);
      expect(any((d) => d.padH === 0) && any((d) => d.padH === 1)).toBe(true);
      for (const k of [1, 3, 5]) expect(any((d) => d.R === k && d.S === k), `${k}x${k}`).toBe(true);
      expect(any((d) => d.R !== d.S)).toBe(true);
      expect(any((d) => d.C % 64 !== 0 && d.K % 64 !== 0 && d.C > 64 && d.K > 64)).toBe(true);
      expect(any((d) => d.C % 64 === 0 && d.K % 64 === 0)).toBe(true);
      expect(any((d) => { const { P, Q } = convOutput(d); return (d.N * P * Q) % 64 !== 0; })).toBe(true);
      // The weight gradient's reduction split in ranges (N*P*Q past the shortest range, 256) and not.
      expect(any((d, c) => has(c, 'dw') && d.N * convOutput(d).P * convOutput(d).Q > 256)).toBe(true);
      expect(any((d, c) => has(c, 'dw') && d.N * convOutput(d).P * convOutput(d).Q <= 256)).toBe(true);
      const passes = new Set(mine.map(names));
      for (const p of ['w,x,y', 'b,w,x,y', 'dw,dy,w,x', 'db,dw,dy,w,x', 'dx,dy,w,x']) expect(passes.has(p), p).toBe(true);
      const lin = new Set(linears.filter((c) => c.precision === precision).map(names));
      for (const p of ['w,x,y', 'b,w,x,y', 'db,dw,dx,dy,w,x', 'dw,dx,dy,w,x']) expect(lin.has(p), p).toBe(true);
    }
  });

  it('gradients accumulate, forward outputs are written, and the ids are unique', () => {
    const all = nnCases(scale);
    expect(new Set(all.map((c) => c.id)).size).toBe(all.length);
    // Backward passes add into their gradients (but write a fresh dx: params.overwrite) and
    // forward passes write; the other ops' in-place outputs (a running statistic, an
    // optimizer's state, addInto) accumulate too.
    for (const c of all.filter((x) => x.op.endsWith('Forward') || x.op.endsWith('Backward'))) {
      const written = (c.params as { overwrite?: boolean }).overwrite === true;
      for (const t of c.tensors.filter((x) => x.role === 'output'))
        expect(Boolean(t.accumulate), `${c.id} ${t.name}`).toBe((c.op.endsWith('Backward') && !(written && t.name === 'dx')) || t.name.startsWith('running'));
    }
    const writtenOps = new Set(all.filter((c) => (c.params as { overwrite?: boolean }).overwrite === true).map((c) => c.op));
    expect([...writtenOps].sort()).toEqual(['batchNormBackward', 'conv2dBackward', 'linearBackward', 'reluBackward']);
    for (const c of all.filter((x) => x.op.endsWith('Step')))
      expect(c.tensors.find((t) => t.name === 'param')?.accumulate, c.id).toBe(true);
    for (const c of convs) {
      const d = desc(c), { P, Q } = convOutput(d);
      expect(P).toBeGreaterThan(0);
      const count = Object.fromEntries(c.tensors.map((t) => [t.name, t.count]));
      if (count.y) expect(count.y).toBe(d.N * d.K * P * Q);
      if (count.dy) expect(count.dy).toBe(d.N * d.K * P * Q);
      expect(count.x).toBe(d.N * d.C * d.H * d.W);
    }
  });
});

it('the tolerances are the GPU check\'s', () => {
  expect(TOLERANCE).toEqual({ fp32: 1e-5, tf32: 2e-3, bf16: 2e-2 });
});

describe.each(scales)('the GEMM cases (%s sizes)', (scale) => {
  const cases = gemmCases(scale);
  it('every precision meets every transpose pair, padded strides, alpha and beta = 0', () => {
    for (const precision of PRECISIONS) {
      const mine = cases.filter((c) => c.precision === precision);
      expect(new Set(mine.map((c) => `${c.transA}${c.transB}`)).size).toBe(4);
      expect(mine.some((c) => c.padA > 0) && mine.some((c) => c.padB > 0) && mine.some((c) => c.padC > 0)).toBe(true);
      expect(mine.some((c) => c.beta === 0) && mine.some((c) => c.beta !== 0) && mine.some((c) => c.alpha !== 1)).toBe(true);
      expect(mine.some((c) => c.M % 64 !== 0 && c.N % 64 !== 0 && c.K % 32 !== 0)).toBe(true);
      expect(mine.some((c) => c.K === 0) && mine.some((c) => c.M === 1) && mine.some((c) => c.N === 1)).toBe(true);
    }
  });
});

describe.each(scales)('the augmentation cases (%s sizes)', (scale) => {
  const cases = augmentCases(scale);
  it('reach every op kind of native/common/augment_types.h and the resampling', () => {
    const header = fs.readFileSync(path.join(repo, 'native', 'common', 'augment_types.h'), 'utf8');
    const kinds = [...header.slice(header.indexOf('enum class OpKind')).split('};')[0].matchAll(/^\s+(\w+) = \d+,/gm)].map((m) => m[1]);
    expect(kinds.length).toBeGreaterThanOrEqual(13);
    const geometric = ['rotate', 'affine', 'affineMatrix', 'shearX', 'shearY', 'translateX', 'translateY'];
    const used = new Set(cases.flatMap((c) => (c.ops ?? []).map((o) => o.op)));
    for (const kind of kinds) {
      const names = kind === 'Affine' ? geometric : [kind[0].toLowerCase() + kind.slice(1)];
      expect(names.some((n) => used.has(n)), `OpKind ${kind}`).toBe(true);
    }
    for (const op of geometric) expect(used.has(op), op).toBe(true);
    expect(used.has('hflip')).toBe(true);
  });

  it('run each op on both memory paths, uint8 and float, 1 and 3 channels', () => {
    for (const op of new Set(AUGMENT_OPS.map((o) => JSON.stringify(o)))) {
      const mine = cases.filter((c) => c.ops?.some((o) => JSON.stringify(o) === op));
      const global = (c: (typeof cases)[number]) => augmentScratchBytes(c.image) > AUGMENT_SHARED_LIMIT;
      expect(mine.some(global) && mine.some((c) => !global(c)), op).toBe(true);
      expect(new Set(mine.map((c) => c.image.dtype)).size, op).toBe(2);
      expect(new Set(mine.map((c) => c.image.channels)).size, op).toBe(2);
    }
    expect(cases.some((c) => c.image.channels === 3 && c.image.height === 96 && augmentScratchBytes(c.image) > AUGMENT_SHARED_LIMIT)).toBe(true);
    expect(cases.some((c) => c.pipeline)).toBe(true);
    expect(cases.some((c) => c.normalize) && cases.some((c) => c.fill !== null)).toBe(true);
  });
});

describe('the comparisons', () => {
  it('relL2 floors a zero reference and still fails a wrong result', () => {
    const zero = new Float32Array(100);
    expect(relL2(zero, zero)).toBe(0);
    expect(relL2(new Float32Array(100).fill(1e-9), zero)).toBeCloseTo(1e-9 / RMS_FLOOR, 6);
    expect(relL2(new Float32Array(100).fill(1e-3), zero)).toBeGreaterThan(1);
    const ref = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) + 2);
    expect(relL2(ref, ref)).toBe(0);
    expect(relL2(ref.map((x) => x * 1.01), ref)).toBeCloseTo(0.01, 6);
    expect(relL2(new Float32Array(100).fill(NaN), ref)).toBeNaN();
  });

  it('the median of an even count is the mean of the middle two', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([10, 2])).toBe(6);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(median([])).toBeNaN();
  });
});

describe('the kernels a run must launch', () => {
  it('lists every __global__ function of native/cuda/*.cu', () => {
    const names = sourceKernels(path.join(repo, 'native', 'cuda')).map((k) => k.name);
    for (const k of ['forwardKernel', 'backwardKernel', 'prepareKernel', 'reduceKernel', 'setGradientWeights', 'finishGradient', 'gemmKernel', 'fillUniform', 'augmentKernel', 'probeKernel', 'convForwardKernel', 'convBackwardDataKernel', 'convBackwardWeightKernel', 'dwReduceKernel', 'convBiasGradKernel', 'broadcastRowsKernel', 'columnSumKernel'])
      expect(names, k).toContain(k);
    expect(new Set(names).size).toBe(names.length);
  });

  it('reads launch bounds, templates and comments as the compiler does', () => {
    const dir = path.join(root, 'cu');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'a.cu'), [
      'template <class E, int N>',
      '__global__ void __launch_bounds__(kThreads, (2)) tiled(Params p) {}',
      '__global__ void plain(int* x) {}',
      '// __global__ void commentedOut(int* x) {}',
      '/* __global__ void alsoCommentedOut(int* x) {} */',
      '__device__ void helper(int* x) {}',
    ].join('\n'));
    fs.writeFileSync(path.join(dir, 'b.cuh'), '__global__ void inAHeader() {}');
    expect(sourceKernels(dir).map((k) => k.name)).toEqual(['tiled', 'plain']);
    expect(() => sourceKernels(path.join(root, 'absent'))).toThrow(/is missing/);
  });

  it('takes the function name out of a launched kernel\'s name', () => {
    expect(kernelBaseName('backwardKernel<supcon::cuda::Tf32Engine, 2>')).toBe('backwardKernel');
    expect(kernelBaseName('supcon::cuda::(anonymous namespace)::forwardKernel<Fp32Engine>')).toBe('forwardKernel');
    expect(kernelBaseName('void supcon::cuda::gemmKernel<E>(GemmArgs)')).toBe('gemmKernel');
    expect(kernelBaseName('probeKernel')).toBe('probeKernel');
  });
});

describe('the check script on the CPU', () => {
  const script = path.join(repo, 'dist', 'bench', 'gpu-check.js');
  const run = (args: string[], env: Record<string, string> = {}) => {
    const out = path.join(root, args.join('').replace(/\W/g, '') || 'plain');
    fs.mkdirSync(out, { recursive: true });
    const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env: { ...process.env, OUT: out, ...env }, timeout: 120_000 });
    return { ...r, out, lines: (r.stdout ?? '').trim().split('\n') };
  };

  it('--emulated --dry-run runs the small case set and ends with the closing line', () => {
    const r = run(['--emulated', '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.lines.at(-1)).toMatch(/^emulated CUDA: 0 kernels, (\d+) cases, 0 failures$/);
    const cases = Number(/(\d+) cases/.exec(r.lines.at(-1) ?? '')?.[1]);
    expect(cases).toBe(lossCases('small', ['fp32']).length + gemmCases('small', ['fp32']).length + augmentCases('small').length + nnCases('small', ['fp32']).length + 3 + 3);
    expect(r.stdout).toContain('kernel coverage SKIPPED');
    expect(r.status).toBe(0);
    const json = JSON.parse(fs.readFileSync(path.join(r.out, 'cuda-emulated.json'), 'utf8'));
    expect(json.loss.length).toBe(lossCases('small', ['fp32']).length);
    expect(json.summary.failures).toBe(0);
    expect(fs.readFileSync(path.join(r.out, 'cuda-emulated.log'), 'utf8')).toContain('ok   loss-01-fp32');
  });

  it.each([
    ['loss-03-fp32:value', /^FAIL loss-03-fp32 .*grad err [1-9]/m],
    ['loss-01-fp32:throw', /^FAIL loss-01-fp32 .*: Error: planted error$/m],
    ['gemm-05-fp32:guard', /^FAIL gemm-05-fp32 .*PADDING OR GUARDS OVERWRITTEN/m],
    ['augment-03:nan', /^FAIL augment-03 .*NOT FINITE/m],
    ['conv-03-bwd-data-fp32:value', /^FAIL conv-03-bwd-data-fp32 .*dx err [1-9]/m],
    ['conv-07-bwd-weights-fp32:guard', /^FAIL conv-07-bwd-weights-fp32 .*GUARDS OVERWRITTEN/m],
    ['linear-01-fwd-fp32:nan', /^FAIL linear-01-fwd-fp32 .*NOT FINITE/m],
  ])('a fault planted in %s is one failure, and the other cases still run', (fault, line) => {
    const clean = run(['--emulated', '--dry-run']);
    const r = run(['--emulated', '--dry-run'], { SUPCON_GPU_CHECK_PLANT: fault });
    expect(r.stdout).toMatch(line);
    expect(r.stdout.match(/^FAIL /gm)?.length).toBe(1);
    expect(r.lines.at(-1)).toBe((clean.lines.at(-1) ?? '').replace(/0 failures$/, '1 failures'));
    expect(r.status).toBe(1);
  });

  it('--emulated on an addon without the emulator says so and fails', () => {
    const r = run(['--emulated'], { SUPCON_ADDON: '' });
    expect(r.stdout).toContain('this addon has no cudaEmulator()');
    expect(r.lines.at(-1)).toBe('emulated CUDA: 0 kernels, 0 cases, 1 failures');
    expect(r.status).toBe(1);
  });

  it('--dry-run prints the plan with an estimate first and passes', () => {
    const r = run(['--dry-run', '--quick']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/plan of `gpu-check --quick` on a GPU:/);
    expect(r.stdout).toMatch(/estimated total on an H200: ~\d+ s \(budget 150 s\)/);
    expect(r.stdout.indexOf('estimated total')).toBeLessThan(r.stdout.indexOf('loss, CUDA vs CPU:'));
    expect(r.lines.at(-1)).toMatch(/^gpu check: \d+ passed, 0 failed$/);
    for (const f of ['gpu-check.json', 'gpu-check.log', 'gpu-check.md']) expect(fs.existsSync(path.join(r.out, f)), f).toBe(true);
  });

  it('rejects an unknown flag', () => {
    const r = run(['--fast']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("unknown argument '--fast'");
  });
});

describe('the conv2d and linear bindings', () => {
  const desc = { N: 1, C: 2, H: 5, W: 5, K: 3, R: 3, S: 3, strideH: 1, strideW: 1, padH: 1, padW: 1 };
  const host = (floats: number) => new native.Storage(floats * 4, 'cpu');

  it('read the descriptor and the precision first; tensor-core precisions are refused on the CPU', () => {
    const nn = native.nn;
    const [x, w, b, y] = [host(50), host(54), host(3), host(75)];
    try {
      expect(() => nn.conv2dForward({ ...desc, padH: 3 }, x, w, b, y)).toThrow(/desc\.padH: /);
      expect(() => nn.conv2dForward({ ...desc, H: 1, padH: 0 }, x, w, b, y)).toThrow(/desc\.R: the window \(3\) is larger than the padded input/);
      expect(() => nn.conv2dForward({ ...desc, N: 2 ** 31 + 1 }, x, w, b, y)).toThrow(RangeError);
      expect(() => nn.conv2dForward(desc, x, w, b, y, undefined, 'fp16' as 'fp32')).toThrow(/precision: expected one of 'fp32', 'tf32', 'bf16'/);
      expect(() => nn.conv2dForward(desc, x, w, b, y, undefined, 'tf32')).toThrow(/precision: 'tf32' runs on GPU tensor cores; on the CPU the layers compute in 'fp32'/);
      expect(() => nn.conv2dBackward(desc, x, w, y, x, null, null, undefined, 'bf16')).toThrow(/precision: 'bf16' runs on GPU tensor cores/);
      expect(() => nn.conv2dBackward({ ...desc, strideW: 0 }, x, w, y, null, null, null)).toThrow(/desc\.strideW: /);
      expect(() => nn.linearForward(x, w, null, y, 0, 2, 3)).toThrow(/N: /);
      expect(() => nn.linearForward(x, w, null, y, 2, 5, 3, undefined, 'int8' as 'fp32')).toThrow(/precision: /);
      expect(() => nn.linearBackward(x, w, y, null, null, null, 2, 5, 3, undefined, 'tf32')).toThrow(/precision: 'tf32' runs on GPU tensor cores/);
      nn.conv2dForward(desc, x, w, b, y, undefined, 'fp32');
    } finally {
      for (const s of [x, w, b, y]) s.dispose();
    }
  });
});
