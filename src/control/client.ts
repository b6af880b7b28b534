/**
 * A client of a server's control socket (the `shmx` command uses it; so may any program). Requests are sent
 * at once and matched to responses by id, so many may be in flight and come back in any order.
 */
import { connect, type Socket } from 'node:net';
import { ShmxError, TimeoutError } from '../errors.js';
import { encodeRequest, LineReader, type ControlCommand, type ControlResponse, type RequestId } from './protocol.js';

/** Responses can be large (a `session` with many channels, `metrics`): bounded, but generously. */
const MAX_RESPONSE_BYTES = 64 << 20;

interface Waiting {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** One connection to a control socket. */
export class ControlClient {
  private readonly waiting = new Map<RequestId, Waiting>();
  private readonly reader = new LineReader(MAX_RESPONSE_BYTES);
  private nextId = 1;
  private ended: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new ShmxError('ECONNRESET', 'the control socket closed')));
  }

  /**
   * Connects to the control socket at `path` (see {@link controlSocketPath}). Rejects with ENOSERVER when no
   * server listens there, TimeoutError after `timeoutMs` (default 2000).
   */
  static connect(path: string, options: { timeoutMs?: number } = {}): Promise<ControlClient> {
    if (typeof path !== 'string' || path === '') throw new TypeError('path must be a non-empty string');
    const timeoutMs = options.timeoutMs ?? 2000;
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TimeoutError(`no answer from the control socket ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ControlClient(socket));
      });
      socket.once('error', (err: Error & { code?: string }) => {
        clearTimeout(timer);
        const none = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
        reject(none
          ? new ShmxError('ENOSERVER', `no server listens on ${path}`, { resource: path, cause: err })
          : new ShmxError(err.code ?? 'ECONNECT', `cannot connect to ${path}: ${err.message}`, { resource: path, cause: err }));
      });
    });
  }

  /**
   * Sends a command; resolves with its result, rejects with a ShmxError carrying the server's error code (or
   * TimeoutError after `timeoutMs`, default 5000).
   */
  request(command: ControlCommand, args?: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.ended !== undefined) return Promise.reject(this.ended);
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new TimeoutError(`control command '${command}' got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      this.socket.write(encodeRequest(id, command, args));
    });
  }

  /** Sends raw bytes (tests, fuzzing): whatever answers come back for them arrive as `id: null` errors. */
  writeRaw(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** Closes the connection. */
  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    for (const line of this.reader.push(chunk)) {
      if (line === null) {
        this.fail(new ShmxError('ETOOLARGE', 'a control response was too large'));
        return;
      }
      let response: ControlResponse;
      try {
        response = JSON.parse(line) as ControlResponse;
      } catch {
        this.fail(new ShmxError('EPROTO', 'the control socket sent something that is not JSON'));
        return;
      }
      if (response.id === null) {
        // Not an answer to a request: the server is ending this connection and says why.
        if (response.error !== undefined) this.fail(new ShmxError(response.error.code, response.error.message));
        continue;
      }
      const w = this.waiting.get(response.id);
      if (w === undefined) continue;
      this.waiting.delete(response.id);
      clearTimeout(w.timer);
      if (response.error !== undefined) w.reject(new ShmxError(response.error.code, response.error.message));
      else w.resolve(response.result);
    }
  }

  private fail(err: Error): void {
    this.ended ??= err;
    for (const [id, w] of this.waiting) {
      this.waiting.delete(id);
      clearTimeout(w.timer);
      w.reject(this.ended);
    }
    this.socket.destroy();
  }
}
