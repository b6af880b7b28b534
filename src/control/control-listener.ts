/**
 * The control socket's listener and its connections (after dfx's UnixSession), run on the control thread
 * (control-thread.ts): each connection counts the requests in, responses out, error responses and consecutive
 * error responses; one timer counts every connection's inactivity down; a connection is cut off after too many
 * consecutive or total error responses; the number of connections is bounded, and so is what one connection
 * may make us buffer. Well-formed requests go to the server's thread through the {@link ControlRelay}; what the
 * commands do is the handler's business (handler.ts), the bytes on the wire are protocol.ts's.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { native } from '../native.js';
import { peerCredentialsOf } from '../session/peer-socket.js';
import type { ControlLimits } from './control-limits.js';
import type { ControlStats } from './control-stats.js';
import { encodeResponse, LineReader, parseRequest, type ControlErrorCode, type ControlRequest, type ControlResponse } from './protocol.js';

/** Counters of one control connection. */
export interface ControlConnectionCounters {
  requestsIn: number;
  responsesOut: number;
  errorResponses: number;
  consecutiveErrors: number;
}

/** Who is on the other end of a control connection (SO_PEERCRED at accept). */
export interface ControlCaller {
  uid: number;
  pid: number;
}

/** What the listener hands to the server's thread. */
export interface ControlRelay {
  /** A well-formed request of connection `connection`: answer with {@link ControlListener.respond}. */
  request(connection: number, request: ControlRequest, caller: ControlCaller): void;
  log(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void;
}

/** The window of the busy budget. */
const BUDGET_WINDOW_MS = 100;

/** A client that does not read its responses may make us buffer at most this much, then it is dropped. */
const MAX_UNREAD_OUTPUT = 8 << 20;

class ControlConnection {
  readonly counters: ControlConnectionCounters = { requestsIn: 0, responsesOut: 0, errorResponses: 0, consecutiveErrors: 0 };
  /** Time left before the inactivity timeout, counted down by the listener's timer. */
  remainingMs: number;
  private inFlight = 0;
  private readonly reader: LineReader;
  private ended = false;

  constructor(
    readonly id: number,
    readonly socket: Socket,
    private readonly owner: ControlListener,
    readonly caller: ControlCaller,
  ) {
    this.remainingMs = owner.limits.idleTimeoutMs;
    this.reader = new LineReader(owner.limits.maxRequestBytes);
    socket.on('data', (chunk: Buffer) => owner.charged(() => this.onLines(chunk)));
    socket.on('error', () => {}); // a client going away mid-write ends only its connection ('close' follows)
    socket.on('close', () => owner.forget(this));
  }

  /** Subtracts `elapsed` from the time left; true when it ran out. */
  countDown(elapsed: number): boolean {
    this.remainingMs -= elapsed;
    return this.remainingMs <= 0;
  }

  private onLines(chunk: Buffer): void {
    if (this.ended) return;
    this.remainingMs = this.owner.limits.idleTimeoutMs;
    for (const line of this.reader.push(chunk)) {
      if (this.ended) return;
      if (line === null) {
        this.counters.requestsIn++;
        this.reply({ id: null, error: { code: 'ETOOLARGE', message: `request longer than ${this.owner.limits.maxRequestBytes} bytes` } });
        continue;
      }
      if (line.trim() === '') continue;
      this.counters.requestsIn++;
      const parsed = parseRequest(line);
      if ('error' in parsed) {
        this.reply(parsed.error);
        continue;
      }
      if (this.inFlight >= this.owner.limits.maxInFlight) {
        this.reply({ id: parsed.request.id, error: { code: 'EBUSY', message: `over ${this.owner.limits.maxInFlight} requests in flight` } });
        continue;
      }
      this.inFlight++;
      this.owner.relay.request(this.id, parsed.request, this.caller);
    }
  }

  /**
   * The answer to one of this connection's requests, already a line (requests overtake each other freely);
   * `costMs`: the server's thread's CPU time for it, charged to the busy budget with the writing.
   */
  answered(line: string, isError: boolean, costMs: number): void {
    this.inFlight--;
    if (!this.ended) this.owner.charged(() => this.send(line, isError), costMs);
  }

  private reply(response: ControlResponse): void {
    if (!this.ended) this.send(encodeResponse(response), true);
  }

  private send(line: string, isError: boolean): void {
    this.counters.responsesOut++;
    if (isError) {
      this.counters.errorResponses++;
      this.counters.consecutiveErrors++;
    } else {
      this.counters.consecutiveErrors = 0;
    }
    this.owner.stats.add('responses');
    if (isError) this.owner.stats.add('errorResponses');
    this.socket.write(line);
    if (this.socket.writableLength > MAX_UNREAD_OUTPUT) {
      this.owner.relay.log('warn', { pid: this.caller.pid }, 'control client does not read its responses: dropped');
      this.socket.destroy();
      return;
    }
    const limits = this.owner.limits;
    if (this.counters.consecutiveErrors >= limits.maxConsecutiveErrors || this.counters.errorResponses >= limits.maxErrors) {
      this.owner.stats.add('cutOffs');
      this.end('ECUTOFF', `closed after ${this.counters.consecutiveErrors} consecutive / ${this.counters.errorResponses} total error responses`);
    }
  }

  /** Tells the client why (one line with id null), then ends the connection. */
  end(code: ControlErrorCode, message: string): void {
    if (this.ended) return;
    this.ended = true;
    this.owner.relay.log('info', { code, pid: this.caller.pid, counters: this.counters }, 'closing a control connection');
    this.socket.end(encodeResponse({ id: null, error: { code, message } }));
    // A client that does not read its end of the socket does not keep it open.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

/** The listening control socket of one SessionServer, on the control thread. */
export class ControlListener {
  private windowStart = performance.now();
  private spentMs = 0;
  private throttled = false;
  private nextId = 1;
  private readonly connections = new Map<number, ControlConnection>();
  private listener: Server | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly limits: ControlLimits,
    readonly stats: ControlStats,
    readonly relay: ControlRelay,
  ) {}

  /** Listens on `path` (the server's thread removed a stale file and sets the mode afterwards). */
  static async listen(path: string, limits: ControlLimits, stats: ControlStats, relay: ControlRelay): Promise<ControlListener> {
    const server = new ControlListener(limits, stats, relay);
    const listener = createServer((socket) => server.charged(() => server.admit(socket)));
    server.listener = listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(path, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (err) => relay.log('warn', { err: String(err) }, 'control socket error'));
    // One timer for every connection; its period bounds how late an idle connection is noticed.
    const tick = Math.max(10, Math.min(1000, Math.floor(limits.idleTimeoutMs / 4)));
    let last = performance.now();
    server.timer = setInterval(() => {
      const now = performance.now();
      const elapsed = now - last;
      last = now;
      // Paused by the busy budget, a connection cannot be heard: that time does not count as its silence.
      if (server.throttled) return;
      for (const c of server.connections.values()) {
        if (c.countDown(elapsed)) {
          stats.add('timeouts');
          c.end('ETIMEDOUT', `no request for ${limits.idleTimeoutMs} ms`);
        }
      }
    }, tick);
    return server;
  }

  /**
   * The server's thread answered a request of connection `connection` (gone meanwhile: dropped, its cost
   * charged all the same), spending `costMs` of its CPU time on it.
   */
  respond(connection: number, line: string, isError: boolean, costMs: number): void {
    const c = this.connections.get(connection);
    if (c === undefined) this.charged(() => {}, costMs);
    else c.answered(line, isError, costMs);
  }

  /**
   * Runs control work and charges this thread's CPU time for it (CPU, not wall time: a loaded machine that
   * deschedules us must not count against the budget), plus `extraMs` spent for it elsewhere (the commands run
   * on the server's thread: a flood of valid but costly requests spends the same budget as garbage); past the
   * budget, pauses every connection.
   */
  charged(work: () => void, extraMs = 0): void {
    const started = native.threadCpuMicros();
    try {
      work();
    } finally {
      this.charge(started, extraMs);
    }
  }

  private charge(started: number, extraMs: number): void {
    const spent = (native.threadCpuMicros() - started) / 1000 + extraMs;
    const now = performance.now();
    if (now - this.windowStart >= BUDGET_WINDOW_MS) {
      this.windowStart = now;
      this.spentMs = 0;
    }
    this.spentMs += spent;
    if (this.throttled || this.spentMs <= this.limits.busyBudgetMs || this.listener === undefined) return;
    this.throttled = true;
    this.stats.add('throttles');
    for (const c of this.connections.values()) c.socket.pause();
    // Node closes connections over maxConnections as soon as they are accepted, before any of our code runs.
    this.listener.maxConnections = Math.max(1, this.connections.size);
    setTimeout(() => {
      this.throttled = false;
      this.windowStart = performance.now();
      this.spentMs = 0;
      if (this.listener !== undefined) this.listener.maxConnections = Infinity;
      for (const c of this.connections.values()) c.socket.resume();
    }, BUDGET_WINDOW_MS - (now - this.windowStart));
  }

  private admit(socket: Socket): void {
    if (this.throttled) socket.pause();
    let caller: ControlCaller;
    try {
      const cred = peerCredentialsOf(socket);
      caller = { uid: cred.uid, pid: cred.pid };
    } catch {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.limits.maxConnections) {
      this.stats.add('connectionsRefused');
      socket.on('error', () => {});
      socket.end(encodeResponse({ id: null, error: { code: 'ETOOMANYCONNECTIONS', message: `over ${this.limits.maxConnections} control connections` } }));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.stats.add('connectionsAccepted');
    this.stats.add('connections');
    const id = this.nextId++;
    this.connections.set(id, new ControlConnection(id, socket, this, caller));
  }

  /** @internal */
  forget(connection: ControlConnection): void {
    if (this.connections.delete(connection.id)) this.stats.add('connections', -1);
  }

  /** Stops listening and ends every connection. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    const listener = this.listener;
    this.listener = undefined;
    if (listener === undefined) return;
    const stopped = new Promise<void>((r) => listener.close(() => r()));
    for (const c of this.connections.values()) c.socket.destroy();
    await stopped;
  }
}
