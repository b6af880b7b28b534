/**
 * `shmx top <server-app>`: a terminal view of a server's sessions and the rates of their channels, refreshed
 * every --interval ms (default 1000) until q, Ctrl-C, --count refreshes, or the server goes away. Each refresh
 * asks for `status`, `sessions` and every session's details at once (answered by id, in any order).
 */
import type { ControlClient } from '../index.js';
import { bytes, duration, rate, table } from './format.js';
import { ask, CommandFailed, connectTo } from './remote.js';
import { EXIT, type Invocation } from './usage.js';

type Totals = { messagesIn: number; messagesOut: number; bytesIn: number; bytesOut: number };

async function snapshot(client: ControlClient) {
  const [status, sessions] = await Promise.all([ask(client, 'status'), ask(client, 'sessions')]);
  const details = await Promise.all((sessions as Array<{ id: string }>).map((s) =>
    client.request('session', { session: s.id }).catch(() => null))); // closed meanwhile
  return { status, details: details.filter((d) => d !== null) as any[], at: performance.now() };
}

function render(snap: Awaited<ReturnType<typeof snapshot>>, previous: Map<string, Totals>, seconds: number): string {
  const s = snap.status;
  const lines = [
    `shmx top — ${s.app} (pid ${s.pid}), up ${duration(s.uptimeMs)}, ${s.counters.active} session(s) open, ` +
      `${s.counters.opened} opened, ${s.counters.faulted} faulted    ${new Date().toISOString().slice(11, 19)}  (q quits)`,
    '',
  ];
  const rows: Array<Array<string | number>> = [];
  const next = new Map<string, Totals>();
  for (const d of snap.details) {
    rows.push([d.id, d.clientApp, d.peer.pid, '', '', '', '', '', `${bytes(d.arenas.session?.inUseBytes)} / ${bytes(d.arenas.session?.reservedBytes)}`]);
    for (const c of d.channels) {
      const key = `${d.id}/${c.id}`;
      const before = previous.get(key);
      next.set(key, c.counters);
      const per = (field: keyof Totals) => (before === undefined || seconds <= 0 ? '-' : rate(Math.max(0, c.counters[field] - before[field]) / seconds));
      const ring = c.ringFill === undefined ? '' : `${Math.round(c.ringFill.out * 100)}%/${Math.round(c.ringFill.in * 100)}%`;
      rows.push([`  ch ${c.id}`, c.transport + (c.spin ? ' spin' : ''), '', per('messagesIn'), per('messagesOut'),
        per('bytesIn') === '-' ? '-' : `${per('bytesIn')}B`, per('bytesOut') === '-' ? '-' : `${per('bytesOut')}B`, ring, c.pendingRequests]);
    }
  }
  previous.clear();
  for (const [k, v] of next) previous.set(k, v);
  lines.push(rows.length === 0 ? 'no open sessions'
    : table(['SESSION / CHANNEL', 'CLIENT / TRANSPORT', 'PID', 'MSG/S IN', 'MSG/S OUT', 'B/S IN', 'B/S OUT', 'RING', 'ARENA / PENDING'], rows, [2, 3, 4, 5, 6]));
  return lines.join('\n');
}

export async function top(inv: Invocation): Promise<number> {
  const interval = Number(inv.flags.interval ?? 1000);
  const count = inv.flags.count === undefined ? Infinity : Number(inv.flags.count);
  const client = await connectTo(inv);
  const tty = process.stdout.isTTY === true;
  let stop = false;
  let wake: () => void = () => {};
  const quit = () => {
    stop = true;
    wake();
  };
  const stdin = process.stdin;
  if (stdin.isTTY === true) {
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', (key: Buffer) => {
      if (key[0] === 0x71 /* q */ || key[0] === 0x03 /* Ctrl-C */) quit();
    });
  }
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
  const previous = new Map<string, Totals>();
  let last: number | undefined;
  try {
    for (let n = 0; n < count && !stop; n++) {
      let snap;
      try {
        snap = await snapshot(client);
      } catch (err) {
        if (err instanceof CommandFailed && /ECONNRESET|ECUTOFF|ETIMEDOUT/.test(err.message)) {
          throw new CommandFailed(`the server of '${inv.args['server-app']}' went away`, EXIT.noServer);
        }
        throw err;
      }
      const seconds = last === undefined ? 0 : (snap.at - last) / 1000;
      last = snap.at;
      // Home + clear on a terminal; a plain separator when piped, so the output stays readable in a file.
      process.stdout.write(`${tty ? '\x1b[H\x1b[2J' : n > 0 ? '\n' : ''}${render(snap, previous, seconds)}\n`);
      if (n + 1 < count && !stop) await new Promise<void>((r) => { wake = r; setTimeout(r, interval); });
    }
  } finally {
    if (stdin.isTTY === true) {
      stdin.setRawMode(false);
      stdin.pause();
    }
    client.close();
  }
  return EXIT.ok;
}
