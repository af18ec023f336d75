// Writes prebuilds/<platform>-<arch>/node.napi.node: the full CMake build (CUDA kernels
// included where nvcc is present), named and stripped by prebuildify, so that
// `npm install supcon` needs no compiler, CUDA toolkit or network.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const prebuildify = createRequire(import.meta.url).resolve('prebuildify/bin.js');
const run = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PREBUILD_NODE_GYP: path.join(root, 'scripts', 'prebuild-backend.mjs') },
});
process.exit(run.status ?? 1);
