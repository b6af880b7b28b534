import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests spawn real processes and share two cores: forks keep each file in its own process.
    pool: 'forks',
    maxWorkers: 2,
  },
});
