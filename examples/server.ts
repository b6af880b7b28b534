/**
 * The server program. `PricingServer` is the process-level object: it owns the SessionServer and creates one
 * `PricingSession` per accepted session. A PricingSession owns everything that belongs to one session and
 * is dropped when the session closes (the "App_session" organisation of the Flow-IPC manual).
 *
 * Session scope: the structures a client builds in its session arena, read here in place, gone with the
 * session (and the per-session counters below, dropped with the PricingSession).
 * App scope: a price table in the app arena of the `trader` app, shared by all trader sessions, kept
 * across them, removed when the server stops.
 */
import { SessionServer, type Block, type Channel, type Session } from '../src/index.js';
import { SERVER_APP, universe } from './universe.js';

const say = (text: string) => console.log(`[server ${process.pid}] ${text}`);

class PricingSession {
  private structuresRead = 0;
  private bytesReadInPlace = 0;

  constructor(private readonly session: Session, prices: Block) {
    session.on('channel', (channel) => this.serve(channel, prices));
  }

  private serve(channel: Channel, prices: Block): void {
    channel.on('message', (message) => {
      const kind = (channel.metadata as { kind?: string }).kind;
      if (kind === 'prices') {
        // Hand out the app-scope table by handle: the client reads our memory, nothing is copied.
        message.reply(prices); // queued when the channel is full, never dropped
      } else if (message.block !== undefined) {
        // A structure built by the client in shared memory: read it in place.
        const values = new Float64Array(message.block.buffer, message.block.offset, message.block.length / 8);
        let sum = 0;
        for (let i = 0; i < values.length; i += 1024) sum += values[i]!;
        this.structuresRead++;
        this.bytesReadInPlace += message.block.length;
        message.reply(Buffer.from(JSON.stringify({ sampledSum: sum, values: values.length })));
      } else {
        message.reply(message.bytes);
      }
      message.release();
    });
  }

  /** Called once, after the session's own close. */
  dropped(reason: string): void {
    const mib = (this.bytesReadInPlace / 2 ** 20).toFixed(0);
    say(`session ${this.session.id} closed (${reason}): read ${this.structuresRead} structure(s), ${mib} MiB, in place`);
  }
}

export class PricingServer {
  private server: SessionServer | undefined;
  private readonly sessions = new Map<Session, PricingSession>();
  private prices: Block | undefined;

  async start(): Promise<void> {
    this.server = await SessionServer.start({
      universe,
      serverApp: SERVER_APP,
      sessionArena: { maxBytes: 512 << 20, initialBytes: 4 << 20 },
      keepAlive: { intervalMs: 1000, timeoutMs: 10_000 },
      onSessionOpen: (session) => {
        // App-scope state: made in the first session's app arena, shared by every later trader session.
        this.prices ??= this.makePriceTable(session);
        this.sessions.set(session, new PricingSession(session, this.prices));
        say(`session ${session.id} opened with ${session.peer.app} (pid ${session.peer.pid})`);
      },
      onSessionClose: (session, reason) => {
        this.sessions.get(session)?.dropped(reason);
        this.sessions.delete(session);
      },
    });
    say(`listening on ${this.server.socketPath}`);
  }

  private makePriceTable(session: Session): Block {
    const table = session.appArena.alloc(8 * 1024, { align: 8 });
    const prices = table.float64();
    for (let i = 0; i < prices.length; i++) prices[i] = 100 + i / 100;
    return table;
  }

  async stop(): Promise<void> {
    this.prices?.release();
    await this.server?.close();
    say('stopped; every shared object removed');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = new PricingServer();
  await server.start();
  process.send?.('ready');
  const stop = () => void server.stop().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
