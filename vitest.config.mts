import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    reporters: ['default'],
    // Memory that ops allocate without zeros (their outputs, written in full by the kernels)
    // comes as NaN bytes in every test, so that a kernel leaving part of an output unwritten
    // fails its test instead of passing on stale zeros (docs/ARCHITECTURE.md, "Memory").
    env: { SUPCON_POISON_UNINITIALIZED: '1' },
  },
});
