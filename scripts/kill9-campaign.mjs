#!/usr/bin/env node
// The kill -9 campaign (docs/RELIABILITY.md): processes killed with SIGKILL at random moments
//  1. while they replace a 4 MB file with writeFileAtomic in a loop: the file must always be
//     one complete version, and the temporary files left behind are counted, then removed
//     by removeStaleTempFiles (what `supcon train` and `--resume` run on start);
//  2. while they train (the toy trainer of the tests, real run folder and checkpoints): the
//     run must resume from its last checkpoint and end with the metrics of a run never
//     killed, line for line.
//   node scripts/kill9-campaign.mjs [--writes 25] [--trainings 10] [--seed 1]
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const o = { writes: 25, trainings: 10, seed: 1 };
const argv = process.argv.slice(2);
for (let k = 0; k < argv.length; k += 2) o[argv[k].replace(/^--/, '')] = Number(argv[k + 1]);
let s = o.seed >>> 0 || 1;
const random = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-kill9-'));
const { leftoverTempFiles, removeStaleTempFiles } = await import(path.join(root, 'dist/lib/io/atomic.js'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const exited = (child) => new Promise((r) => child.on('exit', r));

// 1. Atomic writes. Each version is 4 MB: an 8-byte counter, then bytes derived from it,
// then the SHA-256 of the rest, so that any file can be checked on its own.
const writer = `
  const { writeFileAtomic } = require(${JSON.stringify(path.join(root, 'dist/lib/io/atomic.js'))});
  const { createHash } = require('node:crypto');
  const target = process.argv[1];
  for (let v = 1; ; v++) {
    const body = Buffer.alloc(4 << 20, v & 0xff);
    body.writeBigUInt64LE(BigInt(v), 0);
    const sum = createHash('sha256').update(body).digest();
    writeFileAtomic(target, (function* () { yield body.subarray(0, 1 << 21); yield body.subarray(1 << 21); yield sum; })());
  }`;
const writes = { kills: 0, whole: 0, damaged: 0, orphans: 0, killsWithOrphan: 0, removed: 0 };
for (let k = 0; k < o.writes; k++) {
  const dir = path.join(work, `w${k}`);
  fs.mkdirSync(dir);
  const target = path.join(dir, 'checkpoint.bin');
  const child = spawn(process.execPath, ['-e', writer, target], { stdio: 'ignore' });
  await sleep(150 + random() * 600);
  child.kill('SIGKILL');
  await exited(child);
  writes.kills++;
  if (fs.existsSync(target)) {
    const bytes = fs.readFileSync(target);
    const body = bytes.subarray(0, bytes.length - 32), sum = bytes.subarray(bytes.length - 32);
    if (bytes.length === (4 << 20) + 32 && createHash('sha256').update(body).digest().equals(sum)) writes.whole++;
    else writes.damaged++;
  } else {
    writes.whole++; // killed before the first rename: no file yet, which is not a damaged one
  }
  const left = leftoverTempFiles(dir);
  writes.orphans += left.length;
  if (left.length > 0) writes.killsWithOrphan++;
  writes.removed += removeStaleTempFiles(dir).length;
  if (leftoverTempFiles(dir).length !== 0) writes.damaged++;
}
console.log(`kill9 atomic writes: ${writes.kills} kills, ${writes.whole} left one complete version, ${writes.damaged} damaged; ` +
  `${writes.orphans} temporary files left (after ${writes.killsWithOrphan} kills), ${writes.removed} removed by the next start`);

// 2. Training, killed and resumed.
const childJs = path.join(root, 'test/fixtures/train-child.mjs');
const metricsOf = (dir) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => { const { seconds: _s, ...rest } = JSON.parse(l); return JSON.stringify(rest); });
const reference = path.join(work, 'reference');
const ref = spawn(process.execPath, [childJs, reference, 'fresh'], { stdio: 'ignore' });
await exited(ref);
const want = metricsOf(reference);
const train = { kills: 0, resumed: 0, identical: 0, failed: 0, orphansRemoved: 0 };
for (let k = 0; k < o.trainings; k++) {
  const out = path.join(work, `t${k}`);
  let mode = 'fresh';
  let kills = 0;
  // Kill it once or twice at random moments after its first checkpoint, then let it finish.
  const plannedKills = 1 + Math.floor(random() * 2);
  for (;;) {
    const child = spawn(process.execPath, [childJs, out, mode], { stdio: ['ignore', 'pipe', 'ignore'] });
    let checkpointed = mode === 'resume';
    child.stdout.on('data', (d) => { if (String(d).includes('step 1 ')) checkpointed = true; });
    if (kills < plannedKills) {
      while (!checkpointed && child.exitCode === null) await sleep(10);
      await sleep(random() * 1200);
      child.kill('SIGKILL');
      kills++;
      train.kills++;
      await exited(child);
      const stale = leftoverTempFiles(out).length + (fs.existsSync(path.join(out, 'checkpoints')) ? leftoverTempFiles(path.join(out, 'checkpoints')).length : 0);
      train.orphansRemoved += stale;
      mode = 'resume';
      continue;
    }
    const code = await exited(child);
    if (code !== 0) { train.failed++; break; }
    train.resumed++;
    const got = metricsOf(out);
    if (got.length === want.length && got.every((l, i) => l === want[i])) train.identical++;
    else train.failed++;
    const left = leftoverTempFiles(out).length + leftoverTempFiles(path.join(out, 'checkpoints')).length;
    if (left !== 0) train.failed++;
    break;
  }
}
console.log(`kill9 training: ${o.trainings} runs, ${train.kills} kills; ${train.resumed} resumed to the end, ${train.identical} with the ` +
  `metrics of the run never killed (line for line), ${train.failed} failed; ${train.orphansRemoved} temporary files found after kills ` +
  '(all gone by the end)');
fs.rmSync(work, { recursive: true, force: true });
process.exitCode = writes.damaged + train.failed > 0 ? 1 : 0;
