/**
 * The control socket's listener and its connections (after dfx's UnixSession): each connection counts the
 * requests in, responses out, error responses and consecutive error responses; one server timer counts every
 * connection's inactivity down; a connection is cut off after too many consecutive or total error responses;
 * the number of connections is bounded, and so is what one connection may make us buffer. What the commands
 * do is the handler's business (handler.ts); the bytes on the wire are protocol.ts's.
 */
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import { peerCredentialsOf } from '../session/peer-socket.js';
import {
  encodeResponse,
  LineReader,
  MAX_REQUEST_BYTES,
  parseRequest,
  type ControlErrorCode,
  type ControlRequest,
  type ControlResponse,
} from './protocol.js';

/** Limits of the control socket. Every field is optional in {@link ControlSocketOptions}. */
export interface ControlLimits {
  /** A connection that sends no request for this long is closed (ETIMEDOUT). Default 60 000 ms. */
  idleTimeoutMs: number;
  /** Closed after this many error responses in a row (ECUTOFF). Default 8. */
  maxConsecutiveErrors: number;
  /** Closed after this many error responses in all (ECUTOFF). Default 64. */
  maxErrors: number;
  /** Connections at once; one more gets ETOOMANYCONNECTIONS and is closed. Default 16. */
  maxConnections: number;
  /** Requests of one connection being answered at once; more get EBUSY. Default 64. */
  maxInFlight: number;
  /** Longest request line in bytes. Default 64 KiB. */
  maxRequestBytes: number;
  /**
   * CPU time the control socket may use per 100 ms window. Past it, every control connection is paused
   * (and new ones dropped) until the window ends, so a flood of control traffic cannot starve the sessions.
   * Default 5 ms (a twentieth of a core at most).
   */
  busyBudgetMs: number;
}

/** The `control` option of a SessionServer: `false` turns the control socket off. */
export interface ControlSocketOptions extends Partial<ControlLimits> {
  /** Mode bits of the socket file (default: the server app's permission level, as its master socket). */
  mode?: number;
}

/** Answers one request: a result, or throws (an error with a `code` becomes that error response). */
export type ControlHandler = (request: ControlRequest, caller: { uid: number; pid: number }) => Promise<unknown> | unknown;

/** Counters of one control connection. */
export interface ControlConnectionCounters {
  requestsIn: number;
  responsesOut: number;
  errorResponses: number;
  consecutiveErrors: number;
}

export function resolveControlLimits(options: ControlSocketOptions = {}): ControlLimits {
  const positive = (v: number | undefined, name: string, fallback: number) => {
    if (v === undefined) return fallback;
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`control.${name} must be a positive integer`);
    return v;
  };
  return {
    idleTimeoutMs: positive(options.idleTimeoutMs, 'idleTimeoutMs', 60_000),
    maxConsecutiveErrors: positive(options.maxConsecutiveErrors, 'maxConsecutiveErrors', 8),
    maxErrors: positive(options.maxErrors, 'maxErrors', 64),
    maxConnections: positive(options.maxConnections, 'maxConnections', 16),
    maxInFlight: positive(options.maxInFlight, 'maxInFlight', 64),
    maxRequestBytes: positive(options.maxRequestBytes, 'maxRequestBytes', MAX_REQUEST_BYTES),
    busyBudgetMs: positive(options.busyBudgetMs, 'busyBudgetMs', 5),
  };
}

/** The window of the busy budget. */
const BUDGET_WINDOW_MS = 100;

/** A client that does not read its responses may make us buffer at most this much, then it is dropped. */
const MAX_UNREAD_OUTPUT = 8 << 20;

class ControlConnection {
  readonly counters: ControlConnectionCounters = { requestsIn: 0, responsesOut: 0, errorResponses: 0, consecutiveErrors: 0 };
  /** Time left before the inactivity timeout, counted down by the server's timer. */
  remainingMs: number;
  private inFlight = 0;
  private readonly reader: LineReader;
  private ended = false;

  constructor(
    readonly socket: Socket,
    private readonly owner: ControlServer,
    private readonly caller: { uid: number; pid: number },
  ) {
    this.remainingMs = owner.limits.idleTimeoutMs;
    this.reader = new LineReader(owner.limits.maxRequestBytes);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {}); // a client going away mid-write ends only its connection ('close' follows)
    socket.on('close', () => owner.forget(this));
  }

  /** Subtracts `elapsed` from the time left; true when it ran out. */
  countDown(elapsed: number): boolean {
    this.remainingMs -= elapsed;
    return this.remainingMs <= 0;
  }

  private onData(chunk: Buffer): void {
    this.owner.charged(() => this.onLines(chunk));
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
      this.run(parsed.request);
    }
  }

  /** Runs one request; its answer goes out whenever it is ready (requests overtake each other freely). */
  private run(request: ControlRequest): void {
    this.inFlight++;
    void (async () => {
      try {
        const result = await this.owner.handler(request, this.caller);
        this.reply({ id: request.id, result });
      } catch (err) {
        const e = err as Error & { code?: unknown };
        const code = typeof e.code === 'string' ? e.code : 'EINTERNAL';
        if (code === 'EINTERNAL') this.owner.logger.warn({ err, command: request.command }, 'control command failed');
        this.reply({ id: request.id, error: { code, message: String(e.message ?? e) } });
      } finally {
        this.inFlight--;
      }
    })();
  }

  private reply(response: ControlResponse): void {
    if (!this.ended) this.owner.charged(() => this.send(response));
  }

  private send(response: ControlResponse): void {
    const isError = response.error !== undefined;
    this.counters.responsesOut++;
    if (isError) {
      this.counters.errorResponses++;
      this.counters.consecutiveErrors++;
    } else {
      this.counters.consecutiveErrors = 0;
    }
    this.owner.noteResponse(isError);
    this.socket.write(encodeResponse(response));
    if (this.socket.writableLength > MAX_UNREAD_OUTPUT) {
      this.owner.logger.warn({ pid: this.caller.pid }, 'control client does not read its responses: dropped');
      this.socket.destroy();
      return;
    }
    const limits = this.owner.limits;
    if (this.counters.consecutiveErrors >= limits.maxConsecutiveErrors || this.counters.errorResponses >= limits.maxErrors) {
      this.owner.cutOffs++;
      this.end('ECUTOFF', `closed after ${this.counters.consecutiveErrors} consecutive / ${this.counters.errorResponses} total error responses`);
    }
  }

  /** Tells the client why (one line with id null), then ends the connection. */
  end(code: ControlErrorCode, message: string): void {
    if (this.ended) return;
    this.ended = true;
    this.owner.logger.info({ code, pid: this.caller.pid, counters: this.counters }, 'closing a control connection');
    this.socket.end(encodeResponse({ id: null, error: { code, message } }));
    // A client that does not read its end of the socket does not keep it open.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

/** The listening control socket of one SessionServer. */
export class ControlServer {
  readonly limits: ControlLimits;
  readonly path: string;
  /** Totals over the life of the server. */
  connectionsAccepted = 0;
  connectionsRefused = 0;
  responses = 0;
  errorResponses = 0;
  cutOffs = 0;
  timeouts = 0;
  /** Times the busy budget ran out and control connections were paused. */
  throttles = 0;
  private windowStart = performance.now();
  private spentMs = 0;
  /** @internal */
  throttled = false;
  private readonly connections = new Set<ControlConnection>();
  private listener: Server | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    path: string,
    options: ControlSocketOptions,
    readonly handler: ControlHandler,
    readonly logger: Logger,
  ) {
    this.path = path;
    this.limits = resolveControlLimits(options);
  }

  /**
   * Listens on `path` (the run directory was created and checked by the caller, as for the master socket),
   * replacing a stale socket file, and sets its mode.
   */
  static async listen(path: string, options: ControlSocketOptions & { mode: number }, handler: ControlHandler, logger: Logger): Promise<ControlServer> {
    const server = new ControlServer(path, options, handler, logger);
    rmSync(path, { force: true }); // the caller holds the app's instance lock: a file here is stale
    const listener = createServer((socket) => server.accept(socket));
    server.listener = listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(path, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (err) => logger.error({ err }, 'control socket error'));
    chmodSync(path, options.mode);
    // One timer for every connection; its period bounds how late an idle connection is noticed.
    const tick = Math.max(10, Math.min(1000, Math.floor(server.limits.idleTimeoutMs / 4)));
    let last = performance.now();
    server.timer = setInterval(() => {
      const now = performance.now();
      const elapsed = now - last;
      last = now;
      // Paused by the busy budget, a connection cannot be heard: that time does not count as its silence.
      if (server.throttled) return;
      for (const c of server.connections) {
        if (c.countDown(elapsed)) {
          server.timeouts++;
          c.end('ETIMEDOUT', `no request for ${server.limits.idleTimeoutMs} ms`);
        }
      }
    }, tick);
    server.timer.unref();
    return server;
  }

  /** Control connections open now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * @internal Runs control work and charges its CPU time (CPU, not wall time: a loaded machine that deschedules
   * us must not count against the budget); past the budget, pauses every connection.
   */
  charged(work: () => void): void {
    const started = process.cpuUsage();
    try {
      work();
    } finally {
      this.charge(started);
    }
  }

  private charge(started: NodeJS.CpuUsage): void {
    const used = process.cpuUsage(started);
    const ms = (used.user + used.system) / 1000;
    const now = performance.now();
    if (now - this.windowStart >= BUDGET_WINDOW_MS) {
      this.windowStart = now;
      this.spentMs = 0;
    }
    this.spentMs += ms;
    if (this.throttled || this.spentMs <= this.limits.busyBudgetMs || this.listener === undefined) return;
    this.throttled = true;
    this.throttles++;
    for (const c of this.connections) c.socket.pause();
    // Node closes connections over maxConnections as soon as they are accepted, before any of our code runs.
    this.listener.maxConnections = Math.max(1, this.connections.size);
    setTimeout(() => {
      this.throttled = false;
      this.windowStart = performance.now();
      this.spentMs = 0;
      if (this.listener !== undefined) this.listener.maxConnections = Infinity;
      for (const c of this.connections) c.socket.resume();
    }, BUDGET_WINDOW_MS - (now - this.windowStart)).unref();
  }

  private accept(socket: Socket): void {
    this.charged(() => this.admit(socket));
  }

  private admit(socket: Socket): void {
    if (this.throttled) socket.pause();
    let caller: { uid: number; pid: number };
    try {
      const cred = peerCredentialsOf(socket);
      caller = { uid: cred.uid, pid: cred.pid };
    } catch {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.limits.maxConnections) {
      this.connectionsRefused++;
      socket.on('error', () => {});
      socket.end(encodeResponse({ id: null, error: { code: 'ETOOMANYCONNECTIONS', message: `over ${this.limits.maxConnections} control connections` } }));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.connectionsAccepted++;
    this.connections.add(new ControlConnection(socket, this, caller));
  }

  /** @internal */
  forget(connection: ControlConnection): void {
    this.connections.delete(connection);
  }

  /** @internal */
  noteResponse(isError: boolean): void {
    this.responses++;
    if (isError) this.errorResponses++;
  }

  /** Stops listening, ends every connection and removes the socket file. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    const listener = this.listener;
    this.listener = undefined;
    if (listener === undefined) return;
    const stopped = new Promise<void>((r) => listener.close(() => r()));
    for (const c of this.connections) c.socket.destroy();
    rmSync(this.path, { force: true });
    await stopped;
  }
}
