// Lists the sources of one binding.gyp target: `portable` (binding + portable CPU code),
// `avx2` or `avx512` (the CPU kernels compiled for that instruction set).
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const list = (dir) => fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith('.cc')).sort().map((f) => `${dir}/${f}`);
const isa = (f) => /_(avx2|avx512)\.cc$/.exec(f)?.[1] ?? 'portable';
const want = process.argv[2];
const files = want === 'portable'
  ? [...list('native/binding'), ...list('native/cpu').filter((f) => isa(f) === 'portable')]
  : list('native/cpu').filter((f) => isa(f) === want);
process.stdout.write(files.join(' '));
