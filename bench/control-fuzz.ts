/**
 * Does fuzzing a server's control socket slow its sessions? One run, interleaved phases:
 *
 *   quiet  — a client (this process) does 64-byte request/reply round trips on a shm channel to the server
 *   fuzz   — the same, while a third process hammers the server's control socket: random bytes, lines far over
 *            the size limit, deeply nested JSON, garbage that gets it cut off, and connection churn past the
 *            connection limit (new connections as fast as it can)
 *   decoy  — the same fuzzer hammering a decoy instead: a plain Unix-socket server in a fourth process that reads
 *            and discards. On a machine with few cores the fuzzer's own CPU slows everything; fuzz against decoy
 *            is what the control socket itself costs the server.
 *
 * Phases rotate (quiet, fuzz, decoy, quiet, …) so that drift in the machine's load hits each alike. Reports
 * the round trip's median and p99 per kind of phase, their ratio, and how many control connections and error
 * responses the fuzzer caused (from the server's own status). Not a test: on a shared machine the numbers are
 * noisy; compare only within one run.
 *
 *   npm run build && npx tsx bench/control-fuzz.ts [--phases N] [--seconds S]
 *
 * Everything it creates belongs to a server app named for this run, in a temporary run directory; the server
 * closes gracefully and the children are killed in `finally`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { ClientSession, ControlClient, SessionServer, Universe } from '../dist/index.js';
import { machineFacts } from './machine.js';
import { fmt, markdownTable, Recorder } from './stats.js';

type Definition = ConstructorParameters<typeof Universe>[0];
const self = fileURLToPath(import.meta.url);
const role = process.argv[2];

if (role === 'server') {
  const { definition, serverApp } = JSON.parse(process.argv[3]!) as { definition: Definition; serverApp: string };
  const server = await SessionServer.start({ universe: new Universe(definition), serverApp });
  server.on('session', (s) => s.on('channel', (c) => c.on('message', (m) => {
    if (m.isRequest) void m.replyAsync(m.bytes).catch(() => {});
  })));
  const close = () => void server.close().then(() => process.exit(0));
  process.on('message', (msg) => msg === 'close' && close());
  process.once('disconnect', close); // the parent is gone: clean up anyway
  process.send!({ ready: server.controlSocketPath });
} else if (role === 'decoy') {
  const path = process.argv[3]!;
  const decoy = createServer((socket) => {
    socket.on('error', () => {});
    socket.on('data', () => socket.write('{"id":null}\n'));
  });
  decoy.listen(path, () => process.send!('ready'));
  process.once('disconnect', () => process.exit(0));
  process.on('message', () => decoy.close(() => process.exit(0)));
} else if (role === 'fuzz') {
  let path = '';
  let running = false;
  process.on('message', (msg) => {
    if (typeof msg === 'object' && msg !== null && !running) {
      path = (msg as { start: string }).start;
      running = true;
      void Promise.all(Array.from({ length: 8 }, (_, i) => hammer(i))).then(() => process.send!('stopped'));
    }
    if (msg === 'stop') running = false;
    if (msg === 'exit') process.exit(0);
  });
  process.once('disconnect', () => process.exit(0));
  const deep = `${'['.repeat(30_000)}${']'.repeat(30_000)}\n`;
  const huge = Buffer.alloc(256 << 10, 0x61);
  async function hammer(kind: number): Promise<void> {
    while (running) {
      await new Promise<void>((resolve) => {
        const socket = connect(path);
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.on('data', () => {});
        socket.once('connect', () => {
          if (kind % 4 === 0) for (let i = 0; i < 20; i++) socket.write(randomBytes(512));
          if (kind % 4 === 1) for (let i = 0; i < 4; i++) socket.write(huge);
          if (kind % 4 === 2) socket.write(deep.repeat(4));
          // kind 3: connect and leave at once (connection churn)
          socket.end();
        });
      });
    }
  }
  process.send!('ready');
} else {
  await main();
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { phases: { type: 'string', default: '9' }, seconds: { type: 'string', default: '3' } } });
  const phases = Number(values.phases);
  const seconds = Number(values.seconds);
  const tag = `cf${process.pid.toString(36)}`;
  const runDirectory = mkdtempSync(join(tmpdir(), 'shmx-bench-'));
  const definition: Definition = {
    apps: [{ name: `${tag}c` }],
    servers: [{ name: `${tag}s`, acceptedClients: [`${tag}c`], runDirectory }],
  };
  const children: ChildProcess[] = [];
  const spawn = (args: string[]) => {
    const child = fork(self, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    return child;
  };
  try {
    const server = spawn(['server', JSON.stringify({ definition, serverApp: `${tag}s` })]);
    const [{ ready: controlPath }] = (await once(server, 'message')) as [{ ready: string }];
    const fuzzer = spawn(['fuzz']);
    await once(fuzzer, 'message');
    const decoyPath = join(runDirectory, 'decoy.sock');
    const decoy = spawn(['decoy', decoyPath]);
    await once(decoy, 'message');
    const session = await ClientSession.connect({ universe: new Universe(definition), serverApp: `${tag}s`, clientApp: `${tag}c` });
    const channel = await session.openChannel();
    const payload = Buffer.alloc(64, 1);
    for (let i = 0; i < 2000; i++) (await channel.request(payload)).release(); // warm-up

    const kinds = ['quiet', 'fuzz', 'decoy'] as const;
    const samples: Record<(typeof kinds)[number], Recorder> = { quiet: new Recorder(), fuzz: new Recorder(), decoy: new Recorder() };
    for (let p = 0; p < phases; p++) {
      const kind = kinds[p % 3]!;
      if (kind !== 'quiet') fuzzer.send({ start: kind === 'fuzz' ? controlPath : decoyPath });
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end) {
        const t0 = performance.now();
        (await channel.request(payload)).release();
        samples[kind].recordMs(performance.now() - t0);
      }
      if (kind !== 'quiet') {
        const stopped = once(fuzzer, 'message');
        fuzzer.send('stop');
        await stopped;
      }
    }
    const control = await ControlClient.connect(controlPath);
    const status = (await control.request('status')) as { control: { cutOffs: number } };
    control.close();
    await session.close();

    const q = samples.quiet.summary();
    const f = samples.fuzz.summary();
    const d = samples.decoy.summary();
    const m = machineFacts();
    console.log(`\ncontrol-socket fuzzing vs session round trips — ${m.cores} cores, ${m.cpu}, Linux ${m.kernel}, Node ${m.node}`);
    console.log(`${phases} phases of ${seconds} s, rotating; 64-byte request/reply on a shm channel (µs)\n`);
    console.log(markdownTable(['phase', 'round trips', 'median µs', 'p99 µs', 'max µs'], [
      ['quiet', q.count, fmt(q.median), fmt(q.p99), fmt(q.max)],
      ['fuzz (control socket)', f.count, fmt(f.median), fmt(f.p99), fmt(f.max)],
      ['decoy (same fuzzer, other socket)', d.count, fmt(d.median), fmt(d.p99), fmt(d.max)],
      ['fuzz / decoy', fmt(f.count / d.count), fmt(f.median / d.median), fmt(f.p99 / d.p99), ''],
      ['fuzz / quiet', fmt(f.count / q.count), fmt(f.median / q.median), fmt(f.p99 / q.p99), ''],
    ]));
    console.log(`\nthe server cut ${status.control.cutOffs} fuzzing connections off for their errors`);
    server.send('close');
    await once(server, 'exit');
    fuzzer.send('exit');
    decoy.send('exit');
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(runDirectory, { recursive: true, force: true });
  }
}
