/**
 * A soak agent: one process that plays a server app or a client app, driven by JSON lines on stdin and
 * reporting JSON lines on stdout, each stamped with `at` = CLOCK_MONOTONIC in ms (process.hrtime, the same
 * clock in every process of the machine), so the runner can time a SIGKILL against the survivor's 'hosed'.
 *
 * It uses only shmx's public API. Which build it uses is the runner's choice: SHMX_SOAK_LIB names the module
 * (dist/index.js when run as plain JavaScript, src/index.ts under tsx).
 *
 * Traffic is sequence-checked: every message on a channel starts with a u32 sequence number counting from 0 per
 * channel and direction; a receiver that sees anything else reports 'seq-error'.
 */
import { createInterface } from 'node:readline';

type Lib = typeof import('../src/index.js');
type Session = import('../src/index.js').Session;
type Channel = import('../src/index.js').Channel;
type SessionServer = import('../src/index.js').SessionServer;
type Block = import('../src/index.js').Block;
type TransportKind = import('../src/index.js').TransportKind;

const lib = (await import(process.env.SHMX_SOAK_LIB ?? new URL('../src/index.ts', import.meta.url).href)) as Lib;
// The flood's pieces (flood-parts.ts imports only types, so it loads beside either build; the pool says where).
const flood = (await import(process.env.SHMX_SOAK_FLOOD ?? new URL('./flood-parts.ts', import.meta.url).href)) as typeof import('./flood-parts.js');

const now = (): number => Number(process.hrtime.bigint()) / 1e6;
function out(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, at: now(), ...fields })}\n`);
}
function describe(err: unknown): Record<string, unknown> {
  const e = err as Error & { code?: string; reason?: string };
  return { code: e?.code, name: e?.name, message: e?.message, reason: e?.reason };
}

// Anything thrown outside our handlers is a crash of this process: say so, then die as a crash would.
process.on('uncaughtException', (err) => {
  out('uncaught', { ...describe(err), stack: (err as Error).stack });
  process.exit(70);
});
process.on('unhandledRejection', (err) => {
  out('uncaught', { ...describe(err), stack: (err as Error)?.stack, rejection: true });
  process.exit(70);
});

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

let server: SessionServer | undefined;
const sessions = new Set<Session>();
let current: Session | undefined;
let stopping = false;
const loops: Promise<void>[] = [];
const SMALL_MQ = { maxMessages: 4, messageSize: 1024 };

function track(session: Session): void {
  sessions.add(session);
  current = session;
  session.on('hosed', (err) => out('hosed', { id: session.id, reason: (err as { reason?: string }).reason }));
  session.on('close', (reason) => {
    sessions.delete(session);
    if (current === session) current = undefined;
    out('close', { id: session.id, reason });
  });
  session.on('channel', (channel) => serveChannel(channel));
}

/** Checks the sequence of what arrives; streams back when the opener asked for an echo; consumes a flood. */
function serveChannel(channel: Channel): void {
  const flooding = channel.metadata as Partial<import('./flood-parts.js').FloodMetadata> | undefined;
  if (flooding?.flood === true) {
    flood.floodConsumer(channel, { pauseEvery: flooding.pauseEvery ?? 0, pauseMicros: flooding.pauseMicros ?? 0 }, flood.FLOOD_DEFAULTS.stallMs);
    return;
  }
  checkSequence(channel);
  const meta = channel.metadata as { echo?: boolean } | undefined;
  if (meta?.echo === true) void stream(channel);
}

function checkSequence(channel: Channel): void {
  let expected = 0;
  channel.on('message', (m) => {
    const bytes = m.bytes;
    const seq = bytes.byteLength >= 4 ? new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) : -1;
    if (seq !== expected) out('seq-error', { channel: channel.id, transport: channel.transport, expected, got: seq });
    expected = seq + 1;
    m.release();
  });
}

/** Sends sequence-numbered messages until the channel closes: small inline ones, now and then one too big for
 *  the ring (spilled) and one lent from the session arena (a block). Waits for 'drain' when refused. */
async function stream(channel: Channel, onFlowing?: () => void): Promise<void> {
  let seq = 0;
  const session = current;
  while (channel.state === 'open') {
    let payload: Uint8Array | Block;
    const kind = seq % 50;
    try {
      if (kind === 7 && channel.transport !== 'mq') {
        payload = new Uint8Array(40_000);
      } else if (kind === 13 && session !== undefined && session.state === 'open') {
        const block = session.sessionArena.alloc(256);
        payload = block;
      } else {
        payload = new Uint8Array(64);
      }
      const view = payload instanceof Uint8Array ? payload : payload.bytes;
      new DataView(view.buffer, view.byteOffset, 4).setUint32(0, seq, true);
      // false: nothing was sent (the channel is full) — the same message goes again after 'drain'.
      while (!channel.trySend(payload)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            channel.off('drain', done);
            channel.off('close', done);
            resolve();
          };
          channel.on('drain', done);
          channel.on('close', done);
        });
        if (channel.state !== 'open') {
          if (!(payload instanceof Uint8Array)) payload.release();
          return;
        }
      }
      if (!(payload instanceof Uint8Array)) payload.release(); // the lend keeps it alive for the peer
      seq++;
      if (seq === 200) onFlowing?.();
      if (seq % 64 === 0) await new Promise((r) => setImmediate(r));
    } catch (err) {
      if (channel.state !== 'open' || session?.state !== 'open') return; // closing under us: expected
      if ((err as { code?: string }).code === 'EARENABUSY') {
        // The peer held the arena's page lock past the 100 ms bound (on a loaded machine a live holder can be
        // descheduled that long): documented, and an app tries again — as this one does, with the same seq.
        out('busy', { where: 'stream' });
        await pause(5);
        continue;
      }
      out('error', { where: 'stream', ...describe(err) });
      return;
    }
  }
}

/** Connects; with `mayRetry`, a refusal for the server's handshake deadline returns 'retry' instead of an error. */
async function connect(c: { definition: never; clientApp: string; serverApp: string }, mayRetry = false): Promise<Session | undefined | 'retry'> {
  try {
    const session = await lib.ClientSession.connect({
      universe: new lib.Universe(c.definition), clientApp: c.clientApp, serverApp: c.serverApp, timeoutMs: 10_000,
    });
    track(session);
    out('open', { id: session.id });
    return session;
  } catch (err) {
    if (mayRetry && (err as { code?: string }).code === 'ETIMEDOUT' && err instanceof lib.ShmxError && !(err instanceof lib.TimeoutError)) return 'retry';
    out('connect-error', describe(err));
    return undefined;
  }
}

/** Repeats one phase until 'stop'. */
async function loop(phase: string, c: Record<string, unknown>): Promise<void> {
  let announced = false;
  const announce = (): void => {
    if (!announced) out('looping', { phase });
    announced = true;
  };
  const transports: TransportKind[] = ['shm', 'socket', 'mq'];
  let i = 0;
  const live: Block[] = [];
  while (!stopping) {
    i++;
    try {
      if (phase === 'handshake') {
        announce();
        const s = await connect(c as never);
        if (s === undefined || s === 'retry') await pause(5);
        else await s.close();
      } else if (phase === 'alloc') {
        const s = current;
        if (s === undefined || s.state !== 'open') return;
        announce();
        // Small and large blocks in both arenas; now and then a large one makes the arena grow a segment.
        const arena = i % 3 === 0 ? s.appArena : s.sessionArena;
        const size = i % 97 === 0 ? 3 << 20 : i % 11 === 0 ? 200_000 : 1 + (i * 7919) % 4000;
        const block = arena.alloc(size);
        block.bytes[0] = i & 0xff;
        const handle = arena.lend(block);
        arena.borrow(handle).release(); // a lend taken back: the path a channel uses
        live.push(block);
        if (live.length > 32) live.shift()!.release();
        if (i % 16 === 0) await turn();
      } else if (phase === 'channel-open') {
        const s = current;
        if (s === undefined || s.state !== 'open') return;
        announce();
        const transport = transports[i % transports.length]!;
        const channel = await s.openChannel({ transport, mq: SMALL_MQ, metadata: { echo: false } });
        checkSequence(channel);
        const first = new Uint8Array(64);
        channel.send(first); // seq 0
        channel.close();
      }
    } catch (err) {
      if (stopping) break;
      const code = (err as { code?: string }).code;
      if (code === 'EARENABUSY') {
        out('busy', { where: `loop ${phase}` }); // see stream(): documented under load; try again
        await pause(5);
        continue;
      }
      // The peer died or the session closed under us (what the soak does on purpose), or the per-user queue
      // limit was reached by someone else: not this process's error.
      if (current === undefined || current.state !== 'open' || code === 'EMFILE') {
        if (phase !== 'handshake') return;
        await pause(5);
        continue;
      }
      out('error', { where: `loop ${phase}`, ...describe(err) });
      return;
    }
  }
  for (const b of live.splice(0)) b.release();
}

/** Waits `delayUs` on the event loop (setImmediate turns, so the close in progress keeps running) and then
 *  SIGKILLs `pid` — which may be this very process. */
async function killAfter(pid: number, delayUs: number, since: number): Promise<void> {
  while ((now() - since) * 1000 < delayUs) await turn();
  out('killing', { pid, afterUs: Math.round((now() - since) * 1000) });
  process.kill(pid, 'SIGKILL');
}

/** Closes what is left and waits until every session is closed; reports what happened. */
async function settle(): Promise<void> {
  stopping = true;
  await Promise.allSettled(loops.splice(0));
  await Promise.allSettled([...sessions].map((s) => s.close()));
  stopping = false;
  out('settled', { open: sessions.size });
}

const commands = createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const c = JSON.parse(line) as Record<string, unknown> & { cmd: string };
  void (async () => {
    try {
      switch (c.cmd) {
        case 'serve':
          try {
            server = await lib.SessionServer.start({
              universe: new lib.Universe(c.definition as never), serverApp: c.serverApp as string, shutdownTimeoutMs: 2000,
              // Not the default 2 s: with a load of 20–35 on 2 cores a fresh agent's first handshake can take longer
              // (a clean refusal, ETIMEDOUT — or ENOENT when the rollback removed the arena the client was opening
              // — but not what the soak is about). A killed client's handshake ends at its socket's close anyway.
              handshakeTimeoutMs: 10_000,
            });
            server.on('session', (s) => {
              track(s);
              out('session', { id: s.id });
            });
            out('listening', { pid: process.pid });
          } catch (err) {
            out('start-error', describe(err));
          }
          break;
        case 'unserve': {
          const s = server;
          server = undefined;
          await s?.close();
          out('unserved');
          break;
        }
        case 'connect': {
          // A server refusing with ETIMEDOUT (its handshake deadline, 2 s) met a client too slow on a loaded
          // machine — a fresh agent's first connect loads and compiles everything. An app tries again; so do we
          // (twice at most, counted by the runner).
          for (let attempt = 1; ; attempt++) {
            const session = await connect(c as never, attempt < 3);
            if (session !== 'retry') break;
            out('connect-retry', { attempt });
          }
          break;
        }
        case 'loop':
          loops.push(loop(c.phase as string, c));
          break;
        case 'transfer': {
          const s = current;
          if (s === undefined) throw new Error('no session');
          let channel: Channel;
          try {
            channel = await s.openChannel({ transport: c.transport as TransportKind, mq: SMALL_MQ, metadata: { echo: true } });
          } catch (err) {
            // RLIMIT_MSGQUEUE is per user, shared with every other program of this user on the machine.
            if ((err as { code?: string }).code !== 'EMFILE') throw err;
            out('transfer-skipped', describe(err));
            break;
          }
          checkSequence(channel);
          void stream(channel, () => out('transferring', { channel: channel.id, transport: channel.transport }));
          break;
        }
        case 'flood': {
          // Flood runs one after the other, each on a fresh channel (flood-parts.ts): 'flood-run' after each,
          // an 'error' with `stall: true` for a flood that never got its 'drain' (which ends the series).
          const s = current;
          if (s === undefined) throw new Error('no session');
          const settings = {
            ...flood.FLOOD_DEFAULTS, messages: c.messages as number, pauseEvery: c.pauseEvery as number, pauseMicros: c.pauseMicros as number,
          };
          // On a loaded machine a run can take longer than the runner's 10 s for an event while never stalling
          // (a stall is the flood's own finding: no 'drain' for 5 s): a heartbeat says this process is alive.
          const heartbeat = setInterval(() => out('flooding'), 1000);
          try {
            for (let run = 0; run < (c.runs as number); run++) {
              const channel = await s.openChannel({ metadata: { flood: true, pauseEvery: settings.pauseEvery, pauseMicros: settings.pauseMicros } });
              try {
                await flood.floodOnce(channel, run, settings);
              } catch (err) {
                out('error', { where: 'flood', run, stall: flood.isStall(err), ...describe(err) });
                channel.close();
                break;
              }
              channel.close();
              out('flood-run', { run });
            }
          } finally {
            clearInterval(heartbeat);
          }
          break;
        }
        case 'close-kill': {
          const s = current;
          const since = now();
          if (c.shutdown === true) void server?.close();
          else void s?.close();
          out('closing', { id: s?.id, shutdown: c.shutdown === true });
          await killAfter(c.pid as number, c.delayUs as number, since);
          break;
        }
        case 'stop':
          await settle();
          break;
        case 'exit':
          await settle();
          await server?.close();
          process.exit(0);
      }
    } catch (err) {
      out('error', { where: c.cmd, ...describe(err) });
    }
  })();
});
// The runner gone (its end of stdin closed): end as a graceful exit would, leaving nothing behind.
commands.once('close', () => void settle().then(() => server?.close()).then(() => process.exit(0)));
process.once('SIGTERM', () => void settle().then(() => server?.close()).then(() => process.exit(0)));
out('ready', { pid: process.pid });
