import { defineConfig } from 'vitest/config';
import { RUN_TAG_ENV, runTag } from './test/helpers/names.js';

// One tag per run (names.ts makes it, or takes SHMX_TEST_RUN from the caller): every name a test creates
// carries it, and the leak gate in global-setup.ts counts only names that do. Importing names.ts here puts it
// into this process's environment, which the global setup reads; `env` below hands it to the workers, and the
// processes tests start inherit it from them.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Children inherit this: tests assert on behaviour, not on log lines.
    // SHMX_EXIT_CLEANUP off: a worker's exit must not remove what a test leaked before the leak gate looks
    // (test/cleanup/exit-cleanup.test.ts turns it on in its children).
    env: { SHMX_LOG_LEVEL: process.env.SHMX_LOG_LEVEL ?? 'silent', [RUN_TAG_ENV]: runTag, SHMX_EXIT_CLEANUP: 'off' },
    // Deadlines for "never", not measures of speed: on a loaded 2-core machine a child under tsx can take half a
    // minute to boot (see DEFAULT_WAIT_MS in test/helpers/child.ts).
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Tests spawn real processes and share two cores: forks keep each file in its own process.
    pool: 'forks',
    maxWorkers: 2,
  },
});
