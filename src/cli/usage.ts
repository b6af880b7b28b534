/**
 * The command line's grammar: every command with its flags (the usage text lists them all), strict parsing
 * (an unknown flag, a missing or extra argument, a bad app name is a usage error: exit 2) and the exit codes.
 */
import { parseArgs } from 'node:util';
import { Universe } from '../index.js';

export const USAGE = `usage: shmx <command> [arguments] [flags]

kernel objects (no server needed):
  shmx ls [--server-app NAME] [--json]              list shmx objects of this user and whether their creator lives
  shmx sweep [--dry-run] [--server-app NAME] [--json]
                                                    remove objects whose creating process is dead

a running server, through its control socket:
  shmx status <server-app> [--json]                 the server: pid, uptime, version, limits, counters
  shmx sessions <server-app> [--json]               its open sessions: peer, state, traffic, arena use
  shmx session <server-app> <session-id> [--json]   one session and each of its channels
  shmx arenas <server-app> [--json]                 its arenas: reserved, used, free
  shmx resources <server-app> [--json]              the kernel objects and sockets it owns
  shmx close <server-app> <session-id> [--reason REASON] [--json]
                                                    close a session (REASON: a close reason, default local-close)
  shmx metrics <server-app>                         its Prometheus metrics (text exposition format)
  shmx top <server-app> [--interval MS] [--count N] a refreshing view of sessions and channel rates (q quits)

  --run-dir DIR     where the server's sockets are (default: the run directory of a server app with default settings)
  --json            machine-readable output
  -h, --help        this text          --version     the shmx version

exit codes: 0 done, 1 the command failed, 2 usage error, 3 no server of that app runs`;

/** A mistake in the command line: printed with the usage, exit code 2. */
export class UsageError extends Error {}

export const EXIT = { ok: 0, failed: 1, usage: 2, noServer: 3 } as const;

type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

const COMMANDS: Record<string, { positionals: string[]; flags: FlagSpec }> = {
  ls: { positionals: [], flags: { 'server-app': { type: 'string' }, json: { type: 'boolean' } } },
  sweep: { positionals: [], flags: { 'server-app': { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } } },
  status: { positionals: ['server-app'], flags: { json: { type: 'boolean' }, 'run-dir': { type: 'string' } } },
  sessions: { positionals: ['server-app'], flags: { json: { type: 'boolean' }, 'run-dir': { type: 'string' } } },
  session: { positionals: ['server-app', 'session-id'], flags: { json: { type: 'boolean' }, 'run-dir': { type: 'string' } } },
  arenas: { positionals: ['server-app'], flags: { json: { type: 'boolean' }, 'run-dir': { type: 'string' } } },
  resources: { positionals: ['server-app'], flags: { json: { type: 'boolean' }, 'run-dir': { type: 'string' } } },
  close: { positionals: ['server-app', 'session-id'], flags: { reason: { type: 'string' }, json: { type: 'boolean' }, 'run-dir': { type: 'string' } } },
  metrics: { positionals: ['server-app'], flags: { 'run-dir': { type: 'string' } } },
  top: { positionals: ['server-app'], flags: { 'run-dir': { type: 'string' }, interval: { type: 'string' }, count: { type: 'string' } } },
};

export interface Invocation {
  command: string;
  args: Record<string, string>;
  flags: Record<string, string | boolean | undefined>;
}

/** `--help`, `--version`, or a command with its checked arguments. Throws UsageError. */
export function parseCommandLine(argv: string[]): 'help' | 'version' | Invocation {
  const first = argv[0];
  if (first === undefined) throw new UsageError('no command given');
  if (first === '-h' || first === '--help' || first === 'help') {
    if (argv.length > 1) throw new UsageError(`unexpected argument '${argv[1]}'`);
    return 'help';
  }
  if (first === '--version') {
    if (argv.length > 1) throw new UsageError(`unexpected argument '${argv[1]}'`);
    return 'version';
  }
  const spec = COMMANDS[first];
  if (spec === undefined) throw new UsageError(`unknown command '${first}'`);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv.slice(1),
      allowPositionals: true,
      strict: true,
      options: { ...spec.flags, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.values.help === true) return 'help';
  const { positionals } = parsed;
  if (positionals.length < spec.positionals.length) {
    throw new UsageError(`shmx ${first} needs ${spec.positionals.map((p) => `<${p}>`).join(' ')}`);
  }
  if (positionals.length > spec.positionals.length) throw new UsageError(`unexpected argument '${positionals[spec.positionals.length]}'`);
  const args: Record<string, string> = {};
  spec.positionals.forEach((name, i) => (args[name] = positionals[i]!));
  const flags = parsed.values as Record<string, string | boolean | undefined>;
  for (const app of [args['server-app'], flags['server-app']]) {
    if (typeof app === 'string') checkServerAppName(app);
  }
  for (const name of ['interval', 'count'] as const) {
    const v = flags[name];
    if (typeof v === 'string' && !/^[1-9][0-9]{0,8}$/.test(v)) throw new UsageError(`--${name} must be a positive integer, got '${v}'`);
  }
  if (typeof flags['run-dir'] === 'string' && !flags['run-dir'].startsWith('/')) throw new UsageError('--run-dir must be an absolute path');
  return { command: first, args, flags };
}

/** Throws UsageError unless `name` is a valid app name (the universe's own rule). */
function checkServerAppName(name: string): void {
  try {
    serverDefaults(name);
  } catch (err) {
    throw new UsageError(`invalid server app name: ${(err as Error).message}`);
  }
}

/** A server app with every default: its name is checked and its default run directory known. */
export function serverDefaults(serverApp: string): { runDirectory: string } {
  return new Universe({ apps: [], servers: [{ name: serverApp, acceptedClients: [] }] }).server(serverApp);
}
