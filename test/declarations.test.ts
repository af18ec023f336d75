// The shipped declarations, as a strict TypeScript consumer sees them: without @types/node
// (a browser-minded or library project) and with it, for require (dist/index.d.ts) and for
// import (dist/index.d.mts). No skipLibCheck: every declaration file is checked.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve('.');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-dts-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

const consumer = `
import { supconLoss, supconForward, Tensor, tidy, nn, backendInfo } from 'supcon';
const x = Tensor.from(new Float32Array(4 * 2 * 3).fill(0.5), [4, 2, 3]);
const r = supconLoss(x, [0, 1, 0, 1], { temperature: 0.1 });
const g: Tensor<'float32'> = r.grad;
const f = supconForward({ data: new Float32Array(24), shape: [4, 2, 3] }, null);
const grad: Float32Array = f.backward(1);
f.dispose();
const y = tidy(() => nn.ops.relu(x));
const n: number = backendInfo().cpuThreads + grad.length + y.shape.length + g.size;
export { n };
`;

function project(name: string, opts: { types: string[]; module: string; moduleResolution: string; ext: string }) {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'supcon'));
  if (opts.types.includes('node')) {
    fs.symlinkSync(path.join(root, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'));
    fs.symlinkSync(path.join(root, 'node_modules', 'undici-types'), path.join(dir, 'node_modules', 'undici-types'));
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type: opts.ext === 'mts' ? 'module' : 'commonjs' }));
  fs.writeFileSync(path.join(dir, `index.${opts.ext}`), consumer);
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: 'ES2022', lib: ['ES2022', 'DOM'], module: opts.module, moduleResolution: opts.moduleResolution,
      types: opts.types, skipLibCheck: false, preserveSymlinks: true,
    },
    include: [`index.${opts.ext}`],
  }));
  return spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
}

describe('declarations in a strict consumer project', () => {
  it.each([
    ['require, no @types/node', { types: [], module: 'commonjs', moduleResolution: 'node10', ext: 'ts' }],
    ['require, with @types/node', { types: ['node'], module: 'commonjs', moduleResolution: 'node10', ext: 'ts' }],
    ['import, no @types/node', { types: [], module: 'node16', moduleResolution: 'node16', ext: 'mts' }],
    ['import, with @types/node', { types: ['node'], module: 'node16', moduleResolution: 'node16', ext: 'mts' }],
  ])('%s: tsc --strict, no skipLibCheck, compiles', (name, opts) => {
    const r = project(name.replace(/\W+/g, '-'), opts);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);
});

describe('labels: null, or left out, means SimCLR, and the declarations say so', () => {
  it('supconLoss(f) is supconLoss(f, null), documented on LabelsInput and on both functions', async () => {
    const { supconLoss } = await import('../dist/index.js');
    const data = Float32Array.from({ length: 4 * 2 * 3 }, (_, i) => Math.sin(i));
    const f = { data, shape: [4, 2, 3] };
    expect(supconLoss(f).loss).toBe(supconLoss(f, null).loss);
    expect(supconLoss(f, [0, 0, 1, 1]).loss).not.toBe(supconLoss(f, null).loss);
    const dts = fs.readFileSync(path.join(root, 'dist', 'lib', 'loss.d.ts'), 'utf8');
    expect(dts).toMatch(/Leaving the argument out\s+\* \(`undefined`\) means the same as `null`: no labels, SimCLR/);
    expect(dts).toMatch(/or null \/ undefined for SimCLR/);
    expect(dts).toMatch(/undefined, an omitted argument, also means SimCLR/);
  });
});
