#!/usr/bin/env node
/**
 * The `shmx` command: the kernel objects shmx made (`ls`, `sweep`) and running servers through their control
 * sockets (`status`, `sessions`, `session`, `arenas`, `resources`, `close`, `metrics`, `top`). Uses only the
 * public API. The grammar and exit codes are in usage.ts.
 */
import { readFileSync } from 'node:fs';
import { ls, sweep } from './objects.js';
import { CommandFailed, remote } from './remote.js';
import { top } from './top.js';
import { EXIT, parseCommandLine, USAGE, UsageError } from './usage.js';

function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  let inv;
  try {
    inv = parseCommandLine(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`shmx: ${err.message}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (inv === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (inv === 'version') {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  try {
    if (inv.command === 'ls') return ls(inv);
    if (inv.command === 'sweep') return sweep(inv);
    if (inv.command === 'top') return await top(inv);
    return await remote(inv);
  } catch (err) {
    if (err instanceof CommandFailed) {
      process.stderr.write(`shmx: ${err.message}\n`);
      return err.exitCode;
    }
    const e = err as Error & { code?: string };
    process.stderr.write(`shmx: ${inv.command} failed: ${e.code !== undefined ? `${e.code}: ` : ''}${e.message}\n`);
    return EXIT.failed;
  }
}

process.exitCode = await main(process.argv.slice(2));
