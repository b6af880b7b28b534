/** `shmx ls` and `shmx sweep`: the kernel objects shmx made, no server needed. */
import { pino } from 'pino';
import { listResources, sweepStale, type FoundResource } from '../index.js';
import { EXIT, type Invocation } from './usage.js';

function row(r: FoundResource): string {
  const p = r.parsed;
  const scope = p.session !== null ? `session ${p.session}` : p.clientApp !== null ? 'app' : '-';
  return [
    r.type.padEnd(3),
    p.kind.padEnd(3),
    p.serverApp.padEnd(16),
    (p.clientApp ?? '-').padEnd(16),
    scope.padEnd(12),
    `${p.creator.pid}${r.creatorAlive ? '' : ' (dead)'}`.padEnd(14),
    String(r.bytes ?? '').padStart(10),
    r.name,
  ].join(' ');
}

export function ls({ flags }: Invocation): number {
  const found = listResources(flags['server-app'] as string | undefined);
  if (flags.json === true) process.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
  else {
    process.stdout.write('typ kind server-app       client-app       scope        creator             bytes name\n');
    for (const r of found) process.stdout.write(`${row(r)}\n`);
    process.stdout.write(`${found.length} object(s)\n`);
  }
  return EXIT.ok;
}

export function sweep({ flags }: Invocation): number {
  const dryRun = flags['dry-run'] === true;
  // Failures are reported below, readably; the library's JSON log lines would only repeat them.
  const report = sweepStale({ serverApp: flags['server-app'] as string | undefined, dryRun, logger: pino({ level: 'silent' }) });
  if (flags.json === true) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const verb = dryRun ? 'would remove' : 'removed';
    for (const r of report.removed) process.stdout.write(`${verb} ${r.type} ${r.name}\n`);
    process.stdout.write(`${verb} ${report.removed.length}, kept ${report.kept} of live processes\n`);
  }
  for (const f of report.failed) process.stderr.write(`shmx: could not remove ${f.type} ${f.name}: ${f.code} (${f.message})\n`);
  return report.failed.length > 0 ? EXIT.failed : EXIT.ok;
}
