// Proves the published package works the way users get it: `npm pack`, then install the
// tarball into an empty project with install scripts disabled and no network, and compute
// a loss from it (CommonJS and ESM) with the prebuilt binary.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(path.join(tmpdir(), 'supcon-pack-'));
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

try {
  if (!readdirSync(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`)).some((f) => f.endsWith('.node')))
    throw new Error('no prebuilt binary: run `npm run build:prebuilt` first');
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', work], root));
  const tarball = path.join(work, packed.filename);
  console.log(`packed ${packed.filename}: ${packed.entryCount} files, ${(packed.size / 1e6).toFixed(2)} MB`);

  const app = path.join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, version: '1.0.0' }));
  npm(['install', tarball, '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], app);

  // A loss whose value is known in closed form: identical features give log(B - 1).
  const check = `
    const { supconLoss, backendInfo } = SUPCON;
    const n = 5, v = 2, d = 3;
    const data = new Float32Array(n * v * d).fill(0.25);
    const { loss, grad } = supconLoss({ data, shape: [n, v, d] }, [0, 1, 0, 1, 2], { temperature: 0.1, baseTemperature: 0.1 });
    const want = Math.log(n * v - 1);
    if (Math.abs(loss - want) > 1e-5 || grad.length !== n * v * d) throw new Error('loss ' + loss + ', want ' + want);
    const info = backendInfo();
    console.log(KIND + ': loss ' + loss.toFixed(6) + ' (want ' + want.toFixed(6) + '), cuda kernels: ' + info.cuda + ', cpu kernels: ' + info.cpuKernels);
  `;
  writeFileSync(path.join(app, 'cjs.cjs'), `const SUPCON = require('supcon'); const KIND = 'require';\n${check}`);
  writeFileSync(path.join(app, 'esm.mjs'), `import * as SUPCON from 'supcon'; const KIND = 'import';\n${check}`);
  const where = execFileSync(process.execPath, ['-e', "console.log(require('node-gyp-build').resolve(require('path').dirname(require.resolve('supcon/package.json'))))"], { cwd: app, encoding: 'utf8' }).trim();
  if (!where.includes(`${path.sep}prebuilds${path.sep}`)) throw new Error(`the addon did not load from prebuilds/: ${where}`);
  console.log(`addon: ${path.relative(app, where)}`);
  for (const file of ['cjs.cjs', 'esm.mjs']) process.stdout.write(execFileSync(process.execPath, [file], { cwd: app, encoding: 'utf8' }));
  console.log('pack smoke test: 1 passed, 0 failed');
} finally {
  rmSync(work, { recursive: true, force: true });
}
