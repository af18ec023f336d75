#!/usr/bin/env node
// Stands in for node-gyp when prebuildify runs (PREBUILD_NODE_GYP): builds the full addon
// (CPU + CUDA) with cmake-js into build/Release, where prebuildify picks it up. The target
// version prebuildify passes does not matter: the addon is Node-API only.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
const debug = process.argv.includes('--debug');
const run = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build', ...(debug ? ['--debug'] : [])], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(run.status ?? 1);
