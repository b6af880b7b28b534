#!/usr/bin/env node
/**
 * The `shmx` command: shows and cleans the kernel objects shmx made. Uses only the public API.
 *
 *   shmx ls [--server-app NAME] [--json]
 *   shmx sweep [--dry-run] [--server-app NAME] [--json]
 */
import { parseArgs } from 'node:util';
import { listResources, sweepStale, type FoundResource } from '../index.js';

const USAGE = `usage:
  shmx ls [--server-app NAME] [--json]       list shmx objects of this user and whether their creator lives
  shmx sweep [--dry-run] [--server-app NAME]  remove objects whose creating process is dead`;

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

function main(argv: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'server-app': { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !values.help ? 2 : 0;
  }
  const serverApp = values['server-app'];
  if (command === 'ls') {
    const found = listResources(serverApp);
    if (values.json) process.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
    else {
      process.stdout.write(`${'typ kind server-app       client-app       scope        creator             bytes name'}\n`);
      for (const r of found) process.stdout.write(`${row(r)}\n`);
      process.stdout.write(`${found.length} object(s)\n`);
    }
    return 0;
  }
  if (command === 'sweep') {
    const report = sweepStale({ serverApp, dryRun: values['dry-run'] });
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const verb = values['dry-run'] ? 'would remove' : 'removed';
      for (const r of report.removed) process.stdout.write(`${verb} ${r.type} ${r.name}\n`);
      process.stdout.write(`${verb} ${report.removed.length}, kept ${report.kept} of live processes\n`);
    }
    return 0;
  }
  process.stderr.write(`unknown command '${command}'\n${USAGE}\n`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
