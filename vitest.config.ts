import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Children inherit this: tests assert on behaviour, not on log lines.
    env: { SHMX_LOG_LEVEL: process.env.SHMX_LOG_LEVEL ?? 'silent' },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests spawn real processes and share two cores: forks keep each file in its own process.
    pool: 'forks',
    maxWorkers: 2,
  },
});
