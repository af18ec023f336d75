// Every js and ts code block of README.md and docs/*.md runs, against the built package
// (installed as node_modules/supcon in a scratch folder). A block that cannot run (an
// interface, or one that needs files that are not here) is preceded by the visible marker
//   <!-- doc-test: skip (reason) -->
// and shows as skipped, with its reason. Blocks of sh, python or no language are not code
// to run (commands, layouts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve('.');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-docs-'));
fs.mkdirSync(path.join(work, 'node_modules'));
fs.symlinkSync(root, path.join(work, 'node_modules', 'supcon'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

export interface DocBlock { file: string; line: number; lang: string; code: string; skip: string | null }

/** The fenced code blocks of a Markdown text, with the skip marker of each. */
export function codeBlocks(file: string, text: string): DocBlock[] {
  const lines = text.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    let before = i - 1;
    while (before >= 0 && lines[before].trim() === '') before--;
    const marker = before >= 0 ? /^<!-- doc-test: skip \((.+)\) -->$/.exec(lines[before].trim()) : null;
    blocks.push({ file, line: i + 1, lang: open[1], code: lines.slice(i + 1, end).join('\n'), skip: marker ? marker[1] : null });
    i = end;
  }
  return blocks;
}

// `npm run test:sanitize` runs the suites in a copy of dist/ and test/ alone: no docs there.
const haveDocs = fs.existsSync(path.join(root, 'README.md')) && fs.existsSync(path.join(root, 'docs'));
if (!haveDocs) console.warn(`docs.test.ts: no README.md and docs/ in ${root} (a partial tree); the code blocks are SKIPPED here`);
const files = haveDocs ? ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)] : [];
const runnable = files.flatMap((f) => codeBlocks(f, fs.readFileSync(path.join(root, f), 'utf8')))
  .filter((b) => b.lang === 'js' || b.lang === 'ts');

function run(b: DocBlock) {
  const esm = /^\s*(import|export)\s/m.test(b.code);
  const js = b.lang === 'ts'
    ? ts.transpileModule(b.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
    : b.code;
  const file = path.join(work, `${b.file.replace(/\W+/g, '-')}-${b.line}.${esm ? 'mjs' : 'cjs'}`);
  fs.writeFileSync(file, js);
  return spawnSync(process.execPath, [file], { cwd: work, encoding: 'utf8', timeout: 120_000 });
}

describe.skipIf(!haveDocs)('code blocks of the docs', () => {
  it('finds the blocks, API.md among them', () => {
    expect(runnable.filter((b) => b.file === 'docs/API.md').length).toBeGreaterThanOrEqual(4);
    expect(runnable.some((b) => b.file === 'README.md')).toBe(true);
    expect(codeBlocks('x.md', 'a\n<!-- doc-test: skip (needs a GPU) -->\n\n```js\nx()\n```\n```ts\ny\n```\n'))
      .toEqual([
        { file: 'x.md', line: 4, lang: 'js', code: 'x()', skip: 'needs a GPU' },
        { file: 'x.md', line: 7, lang: 'ts', code: 'y', skip: null },
      ]);
  });

  for (const b of runnable) {
    const name = `${b.file}:${b.line} (${b.lang})`;
    if (b.skip !== null) {
      it.skip(`${name}: SKIPPED, ${b.skip}`, () => {});
      continue;
    }
    it(`${name} runs`, () => {
      const r = run(b);
      expect(r.stderr, `${name}\n${r.stdout}`).not.toMatch(/Error/);
      expect(r.status, `${name}: ${r.stderr}`).toBe(0);
    }, 150_000);
  }
});
