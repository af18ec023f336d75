// Before/after timing of `supcon train`'s trainer step with two builds, in alternating
// processes on the same machine (its load drifts: compare within one run).
//
//   node scripts/step-ab.mjs <before> <after> [encoder=cnn|resnet18] [batch] [steps] [rounds]
//
// A side is an addon file (*.node: this checkout's TypeScript build with that addon) or a
// checkout (its dist/ and build/Release/supcon.node: a change on both sides of the
// binding). Each round runs one process per side, each timing the median of `steps`
// trainer steps after a warm-up (bench/train-step.ts, as `npm run bench:train`); the
// medians of every round and their ratio are printed. Needs `npm run build:ts`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const [before, after, encoder = 'cnn', batchArg, stepsArg = '5', roundsArg = '2'] = process.argv.slice(2);
if (process.argv[2] === '--child') {
  const [, , , enc, batch, steps, from] = process.argv;
  const { syntheticSet, timeTrainerStep } = await import(path.join(from, 'dist/bench/train-step.js'));
  const set = enc === 'cnn' ? syntheticSet(2048, 1, 28, 1) : syntheticSet(512, 3, 32, 1);
  const r = timeTrainerStep(enc, Number(batch), set, Number(steps));
  r.trainer.dispose?.();
  console.log(JSON.stringify({ ms: r.ms, loss: r.loss }));
  process.exit(0);
}
if (before === undefined || after === undefined) {
  console.error('usage: node scripts/step-ab.mjs <before.node> <after.node> [cnn|resnet18] [batch] [steps] [rounds]');
  process.exit(2);
}
const batch = batchArg ?? (encoder === 'cnn' ? '256' : '32');
const times = { before: [], after: [] };
for (let round = 0; round < Number(roundsArg); round++) {
  for (const [name, side] of [['before', before], ['after', after]]) {
    const file = side.endsWith('.node');
    const from = file ? root : path.resolve(side);
    const addon = file ? path.resolve(side) : path.join(from, 'build/Release/supcon.node');
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', encoder, batch, stepsArg, from],
      { env: { ...process.env, SUPCON_ADDON: addon }, encoding: 'utf8' });
    if (r.status !== 0) {
      console.error(r.stderr);
      process.exit(1);
    }
    const { ms, loss } = JSON.parse(r.stdout.trim().split('\n').pop());
    times[name].push(ms);
    console.log(`round ${round + 1} ${name}: ${ms.toFixed(0)} ms a step (loss ${loss.toFixed(4)})`);
  }
}
const fmt = (xs) => xs.map((x) => x.toFixed(0)).join(', ');
console.log(`${encoder} batch ${batch}: before ${fmt(times.before)} ms; after ${fmt(times.after)} ms; ` +
  `after / before, round by round: ${times.after.map((a, i) => (a / times.before[i]).toFixed(2)).join(', ')}`);
