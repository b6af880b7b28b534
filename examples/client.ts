/**
 * The client program. `TraderProcess` connects — retrying with back-off while no server listens — and runs one
 * `TraderSession` per session; a TraderSession owns the session's channels and data.
 */
import { ClientSession, hasCode, type Session } from '../src/index.js';
import { CLIENT_APP, SERVER_APP, universe } from './universe.js';

const say = (text: string) => console.log(`[client ${process.pid}] ${text}`);

class TraderSession {
  constructor(private readonly session: Session) {}

  async run(): Promise<void> {
    const { session } = this;
    const work = await session.openChannel({ metadata: { kind: 'work' } });
    const prices = await session.openChannel({ metadata: { kind: 'prices' } });

    // 64 B round trips: the baseline cost of one message.
    const small = Buffer.alloc(64);
    const rounds = 2000;
    let started = performance.now();
    for (let i = 0; i < rounds; i++) await work.request(small);
    const smallUs = ((performance.now() - started) * 1000) / rounds;
    say(`64 B request/reply: ${smallUs.toFixed(1)} µs per round trip (event-loop wake-ups)`);

    // A 64 MiB structure built in the session arena and sent by handle: no byte is copied.
    const block = session.sessionArena.alloc(64 << 20, { align: 8 });
    const values = block.float64();
    for (let i = 0; i < values.length; i++) values[i] = i;
    started = performance.now();
    const reply = await work.request(block);
    const bigUs = (performance.now() - started) * 1000;
    const answer = JSON.parse(Buffer.from(reply.bytes).toString()) as { values: number };
    say(`64 MiB by handle: ${bigUs.toFixed(1)} µs round trip, including the server sampling its ${answer.values.toLocaleString()} doubles in place (first touch of every page)`);
    block.release();

    // App-scope data: the server's price table, read where it lies.
    const table = await prices.request(Buffer.alloc(0));
    say(`price table from the app arena: ${table.bytes.length} bytes, first price ${new DataView(table.bytes.buffer, table.bytes.byteOffset).getFloat64(0, true)}`);
    table.release();
  }
}

export class TraderProcess {
  async connect(): Promise<Session> {
    for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await ClientSession.connect({ universe, clientApp: CLIENT_APP, serverApp: SERVER_APP });
      } catch (err) {
        if (!hasCode(err, 'ENOSERVER')) throw err;
        say(`no server yet; retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async runOnce(): Promise<void> {
    const session = await this.connect();
    session.on('hosed', (err) => say(`session hosed: ${err.reason}`));
    say(`session ${session.id} open with ${session.peer.app} (pid ${session.peer.pid})`);
    try {
      await new TraderSession(session).run();
    } finally {
      await session.close();
      say('session closed');
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const trader = new TraderProcess();
  await trader.runOnce();
  await trader.runOnce(); // a second session of the same app sees the same app-scope price table
}
