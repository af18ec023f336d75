#!/usr/bin/env node
// The fuzzer: seeded random calls of every exported function and class (and the raw addon),
// in child processes, so that a crash, a hang or a sanitizer report is caught with its seed
// and call index, and the run goes on after it. The grammar is test/fuzz/grammar.mjs.
//
//   npm run fuzz -- [--calls 20000] [--seed 1] [--workers 2] [--from 0] [--hang-seconds 30]
//
// Ends with the line
//   fuzz: N calls, C crashes, H hangs, S sanitizer reports, X non-finite outputs from finite inputs
// and exits with 1 when any of C, H, S, X is not 0. To replay call I of seed S alone:
//   npm run fuzz -- --seed S --from I --calls 1
// Under a sanitizer build, set SUPCON_ADDON, LD_PRELOAD and ASAN_OPTIONS (scripts/fuzz-sanitized.sh).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function parseArgs(argv) {
  const o = { calls: 20000, seed: 1, workers: Math.max(1, Math.min(2, os.availableParallelism?.() ?? os.cpus().length)), from: 0, hangSeconds: 30 };
  for (let k = 0; k < argv.length; k++) {
    const key = argv[k].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if (!(key in o)) throw new Error(`fuzz: unknown option ${argv[k]} (known: --calls, --seed, --workers, --from, --hang-seconds)`);
    const v = Number(argv[++k]);
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`fuzz: ${argv[k - 1]} expects an integer >= 0, got ${argv[k]}`);
    o[key] = v;
  }
  o.workers = Math.max(1, Math.min(o.workers, o.calls || 1));
  return o;
}

const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:|UndefinedBehaviorSanitizer/;
const opts = parseArgs(process.argv.slice(2));
const workerJs = path.join(path.dirname(new URL(import.meta.url).pathname), 'worker.mjs');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-fuzz-run-'));
const totals = { calls: 0, ok: 0, clean: 0, engine: 0, other: 0, nonFinite: 0, crashes: 0, hangs: 0, sanitizer: 0 };
const findings = [];
const events = [];
let spawned = 0;

function readProgress(file) {
  try {
    const fields = fs.readFileSync(file, 'latin1').trim().split(/\s+/);
    const [index, ok, clean, engine, other, nonFinite] = fields.slice(0, 6).map(Number);
    return Number.isFinite(index) ? { index, ok, clean, engine, other, nonFinite, name: fields[6] ?? '-' } : null;
  } catch {
    return null;
  }
}

/** Runs calls [from, end) in one child after another until all are done. */
async function lane(from, end) {
  let next = from;
  while (next < end) {
    const id = spawned++;
    const progressFile = path.join(dir, `p${id}`), eventsFile = path.join(dir, `e${id}`);
    fs.writeFileSync(eventsFile, '');
    const child = spawn(process.execPath, [workerJs, String(opts.seed), String(next), String(end - next), progressFile, eventsFile], {
      stdio: ['ignore', 'ignore', 'pipe'], env: process.env,
    });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-20000); });
    let last = null, lastChange = Date.now(), hung = false;
    const timer = setInterval(() => {
      const p = readProgress(progressFile);
      if (p !== null && (last === null || p.index !== last.index)) { last = p; lastChange = Date.now(); }
      if (Date.now() - lastChange > opts.hangSeconds * 1000) { hung = true; child.kill('SIGKILL'); }
    }, 250);
    const [code, signal] = await new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s])));
    clearInterval(timer);
    const p = readProgress(progressFile) ?? { index: next, ok: 0, clean: 0, engine: 0, other: 0, nonFinite: 0 };
    for (const k of ['ok', 'clean', 'engine', 'other', 'nonFinite']) totals[k] += p[k];
    for (const line of fs.readFileSync(eventsFile, 'utf8').split('\n')) if (line) events.push(JSON.parse(line));
    const finished = code === 0 && p.index === end;
    if (finished) { totals.calls += end - next; next = end; continue; }
    // The call at p.index did not return: a hang, a sanitizer report or a crash.
    const kind = hung ? 'hang' : SANITIZER.test(stderr) ? 'sanitizer report' : 'crash';
    totals[hung ? 'hangs' : kind === 'crash' ? 'crashes' : 'sanitizer']++;
    totals.calls += p.index - next + 1;
    findings.push({
      kind, index: p.index, name: p.name, exit: signal ?? code,
      tail: [...new Set([stderr.split('\n').find((l) => SANITIZER.test(l)) ?? '', ...stderr.split('\n').filter((l) => l.trim() !== '').slice(-25)])]
        .filter(Boolean).join('\n'),
    });
    next = p.index + 1;
  }
}

const t0 = Date.now();
const lanes = [];
const per = Math.ceil(opts.calls / opts.workers);
for (let w = 0; w < opts.workers; w++) {
  const a = opts.from + w * per, b = Math.min(opts.from + opts.calls, a + per);
  if (a < b) lanes.push(lane(a, b));
}
await Promise.all(lanes);
fs.rmSync(dir, { recursive: true, force: true });

const seconds = ((Date.now() - t0) / 1000).toFixed(1);
const byKind = (k) => events.filter((e) => e.kind === k);
console.log(`fuzz: seed ${opts.seed}, calls ${opts.from}..${opts.from + opts.calls - 1}, ${opts.workers} workers, ${seconds} s`);
console.log(`fuzz: outcomes: ${totals.ok} returned, ${totals.clean} threw a TypeError / RangeError / named error, ` +
  `${totals.engine} threw an engine error, ${totals.other} threw something else`);
for (const kind of ['engine', 'other', 'nonFinite']) {
  const list = byKind(kind);
  const seen = new Map();
  for (const e of list) { const key = `${e.name}: ${e.detail.replace(/\d+/g, '#')}`; if (!seen.has(key)) seen.set(key, e); }
  for (const e of [...seen.values()].slice(0, 12))
    console.log(`fuzz: ${kind} at call ${e.index} (${e.name}): ${e.detail}   [replay: npm run fuzz -- --seed ${opts.seed} --from ${e.index} --calls 1]`);
}
for (const f of findings) {
  console.log(`fuzz: ${f.kind} at call ${f.index} of seed ${opts.seed} (${f.name}, exit ${f.exit}); replay: npm run fuzz -- --seed ${opts.seed} --from ${f.index} --calls 1`);
  if (f.tail) console.log(f.tail.replace(/^/gm, '    '));
}
console.log(`fuzz: ${totals.calls} calls, ${totals.crashes} crashes, ${totals.hangs} hangs, ${totals.sanitizer} sanitizer reports, ` +
  `${totals.nonFinite} non-finite outputs from finite inputs`);
process.exitCode = totals.crashes + totals.hangs + totals.sanitizer + totals.nonFinite > 0 ? 1 : 0;
