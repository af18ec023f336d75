// The fuzzer itself: a clean run ends with zeros in every count; the same seed gives the same
// outcomes; a crash, a hang and a non-finite output planted in the run are each caught with
// their call index, and the run goes on past them.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function fuzz(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['test/fuzz/run.mjs', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { status: r.status, out: r.stdout, last: r.stdout.trim().split('\n').pop() };
}

describe('fuzzer', () => {
  it('3,000 calls of seed 11: no crash, hang, sanitizer report or non-finite output; the same outcomes twice', () => {
    const a = fuzz(['--calls', '3000', '--seed', '11']);
    expect(a.last).toBe('fuzz: 3000 calls, 0 crashes, 0 hangs, 0 sanitizer reports, 0 non-finite outputs from finite inputs');
    expect(a.status).toBe(0);
    const outcomes = (o: string) => o.split('\n').find((l) => l.startsWith('fuzz: outcomes:'));
    expect(outcomes(a.out)).toMatch(/fuzz: outcomes: \d+ returned, \d+ threw a TypeError/);
    const b = fuzz(['--calls', '3000', '--seed', '11', '--workers', '1']);
    expect(outcomes(b.out)).toBe(outcomes(a.out));
  });

  it('a planted crash, hang and non-finite output are each reported with their call index, and the rest still runs', () => {
    const r = fuzz(['--calls', '300', '--seed', '3', '--hang-seconds', '2'], { SUPCON_FUZZ_SELF_TEST: 'crash:40,hang:200,nonfinite:250' });
    expect(r.last).toBe('fuzz: 300 calls, 1 crashes, 1 hangs, 0 sanitizer reports, 1 non-finite outputs from finite inputs');
    expect(r.out).toContain('fuzz: crash at call 40 of seed 3 (self-test, exit SIGABRT); replay: npm run fuzz -- --seed 3 --from 40 --calls 1');
    expect(r.out).toContain('fuzz: hang at call 200 of seed 3 (self-test, exit SIGKILL)');
    expect(r.out).toContain('fuzz: nonFinite at call 250 (self-test)');
    expect(r.status).toBe(1);
  });
});
