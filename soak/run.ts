/**
 * `npm run soak` — the crash-recovery matrix (see runner.ts and docs/cleanup-and-safety.md, "The soak").
 *
 *   npm run soak -- [--kills N] [--seed S] [--scenarios a,b] [--targets client,server,both]
 *                   [--mode dist|tsx] [--sweep-every N] [--concurrency N] [--spares N] [--json FILE] [--all-trials]
 *
 * `npm run soak` builds dist/ first; --mode tsx runs the sources instead (no build, slower agent start).
 * Exits 1 when a trial leaked, hung, crashed or saw a sequence error.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runSoak } from './runner.js';
import type { Target } from './scenario.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '200' },
    seed: { type: 'string' },
    scenarios: { type: 'string' },
    targets: { type: 'string' },
    mode: { type: 'string', default: 'dist' },
    'sweep-every': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '1' },
    spares: { type: 'string', default: '2' },
    json: { type: 'string' },
    'all-trials': { type: 'boolean', default: false },
  },
  strict: true,
  allowPositionals: false,
});

function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) {
    console.error(`soak: --${name} must be a positive integer, not '${text}'`);
    process.exit(2);
  }
  return n;
}
if (values.mode !== 'dist' && values.mode !== 'tsx') {
  console.error(`soak: --mode must be dist or tsx, not '${values.mode}'`);
  process.exit(2);
}
const targets = values.targets?.split(',') as Target[] | undefined;
if (targets?.some((t) => !['client', 'server', 'both'].includes(t))) {
  console.error(`soak: --targets takes client, server and both, not '${values.targets}'`);
  process.exit(2);
}

const result = await runSoak({
  kills: positiveInt('kills', values.kills!),
  seed: values.seed === undefined ? undefined : positiveInt('seed', values.seed),
  scenarios: values.scenarios?.split(','),
  targets,
  mode: values.mode,
  sweepEvery: positiveInt('sweep-every', values['sweep-every']!),
  concurrency: positiveInt('concurrency', values.concurrency!),
  spares: positiveInt('spares', values.spares!),
  log: (line) => console.log(line),
});
const { trialsAll, ...summary } = result;
if (values.json !== undefined) {
  writeFileSync(values.json, `${JSON.stringify(values['all-trials'] ? result : summary, null, 2)}\n`);
}
const d = result.detection;
console.log(
  [
    `soak (seed ${result.seed}, mode ${result.mode}): ${result.kills} kills in ${result.trials} trials, ${result.durationS.toFixed(0)} s`,
    `  by scenario: ${Object.entries(result.byScenario).map(([n, v]) => `${n} ${v.kills}`).join(', ')}`,
    `  leaks by stage: survivor ${result.leaks.survivor}, restart ${result.leaks.restart}, sweep ${result.leaks.sweep}`,
    `  hangs ${result.hangs}, crashes ${result.crashes}, errors ${result.errors} (EARENABUSY retried: ${result.busy}; connects refused for the handshake deadline, retried: ${result.connectRetries})`,
    `  flood: ${result.flood.runs} runs, ${result.flood.stalls} stalls`,
    `  death detection (SIGKILL → 'hosed'), ${d.samples} samples: p50 ${d.p50Ms?.toFixed(2)} ms, p99 ${d.p99Ms?.toFixed(2)} ms, max ${d.maxMs?.toFixed(2)} ms`,
    `  machine: ${result.machine.cores} cores, load ${result.machine.loadAtStart.map((l) => l.toFixed(1)).join(' ')} → ${result.machine.loadAtEnd.map((l) => l.toFixed(1)).join(' ')}`,
  ].join('\n'),
);
void trialsAll;
const failed = result.leaks.survivor + result.leaks.restart + result.leaks.sweep + result.hangs + result.crashes + result.errors > 0;
process.exit(failed ? 1 : 0);
