/**
 * The wake-up protocol's model (docs/model/wakeup.pml) checked with spin: the protocol has no lost wake-up in
 * any interleaving, and each known-bad variant (the pre-fix want-drain hand-shake, a doorbell that may lose a
 * ring, parking after the last look) is caught — so the model can fail. Skipped where spin or a C compiler is
 * missing (Debian: apt-get install spin gcc) — but never under CI (`CI=true`, .ci/run installs both): there a
 * missing tool fails the test instead of hiding the model.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/child.js';

const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

describe.skipIf(process.env.CI !== 'true' && (!have('spin') || !have('cc')))('wake-up model', () => {
  it('passes for the protocol and fails for every broken variant', () => {
    const out = execFileSync(`${repoRoot}/docs/model/check.sh`, { encoding: 'utf8' });
    const verdicts = Object.fromEntries(out.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 2)));
    expect(verdicts).toEqual({ protocol: 'pass', buggy: 'fail', lossybell: 'fail', latepark: 'fail', 'N=7': 'pass' });
  }, 180_000);
});
