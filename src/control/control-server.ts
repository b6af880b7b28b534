/**
 * The control socket of one SessionServer, seen from the server's thread. The socket itself lives on a control
 * thread (control-thread.ts): whatever a control client sends — garbage, huge lines, deep nesting, connection
 * churn — is read and judged there, and the sessions' event loop sees only well-formed requests. This side
 * runs each request through the handler (handler.ts), sends the answer back as a line, and reads the totals
 * from shared memory.
 */
import { chmodSync, rmSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { moduleWorker } from '../module-worker.js';
import { native } from '../native.js';
import { resolveControlLimits, type ControlLimits, type ControlSocketOptions } from './control-limits.js';
import type { ControlCaller } from './control-listener.js';
import type { FromControlThread, ToControlThread } from './control-messages.js';
import { ControlStats, type ControlStat } from './control-stats.js';
import { encodeResponse, type ControlRequest } from './protocol.js';

/** Answers one request: a result, or throws (an error with a `code` becomes that error response). */
export type ControlHandler = (request: ControlRequest, caller: ControlCaller) => Promise<unknown> | unknown;

/** The control thread's module: compiled beside this one, or the TypeScript source when running from it. */
const THREAD_MODULE = new URL(`./control-thread.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);

/** The listening control socket of one SessionServer. */
export class ControlServer {
  private closing: Promise<void> | undefined;
  /** The control thread has ended (closed, or failed). */
  private exited = false;

  private constructor(
    readonly path: string,
    readonly limits: ControlLimits,
    private readonly stats: ControlStats,
    private readonly handler: ControlHandler,
    private readonly logger: Logger,
    private readonly thread: Worker,
  ) {}

  /**
   * Listens on `path` (the run directory was created and checked by the caller, as for the master socket),
   * replacing a stale socket file, and sets its mode.
   */
  static async listen(path: string, options: ControlSocketOptions & { mode: number }, handler: ControlHandler, logger: Logger): Promise<ControlServer> {
    const limits = resolveControlLimits(options);
    rmSync(path, { force: true }); // the caller holds the app's instance lock: a file here is stale
    const stats = new ControlStats();
    const thread = moduleWorker(THREAD_MODULE, { workerData: { path, limits, stats: stats.buffer } });
    const server = new ControlServer(path, limits, stats, handler, logger, thread);
    try {
      await new Promise<void>((resolve, reject) => {
        thread.once('error', reject);
        thread.once('exit', (code) => reject(new Error(`the control thread ended (${code}) before it listened`)));
        thread.on('message', (message: FromControlThread) => {
          if (message.type === 'listening') resolve();
          else if (message.type === 'failed') reject(Object.assign(new Error(message.error.message), message.error));
          else server.onMessage(message);
        });
      });
    } catch (err) {
      await thread.terminate();
      throw err;
    }
    thread.removeAllListeners('error').removeAllListeners('exit');
    // A bug in the control thread ends the control socket, never the server.
    thread.on('error', (err) => logger.error({ err }, 'the control thread failed: no control socket from now on'));
    thread.once('exit', () => (server.exited = true));
    thread.unref(); // it never keeps the process alive
    chmodSync(path, options.mode);
    return server;
  }

  /** A total of the control socket (connections open now, responses, cut-offs, …), counted by its thread. */
  stat(field: ControlStat): number {
    return this.stats.get(field);
  }

  private onMessage(message: FromControlThread): void {
    if (message.type === 'request') void this.run(message.connection, message.request, message.caller);
    else if (message.type === 'log') this.logger[message.level](message.fields, message.message);
  }

  /**
   * Runs one request; its answer goes out whenever it is ready (requests overtake each other freely). What it
   * cost this thread goes with the answer, for the busy budget: this thread's CPU time from the call to the
   * answer — for a command that waits (close, metrics) that includes whatever else ran meanwhile, which errs
   * in the sessions' favour.
   */
  private async run(connection: number, request: ControlRequest, caller: ControlCaller): Promise<void> {
    const started = native.threadCpuMicros();
    let line: string;
    let isError = false;
    try {
      const result = await this.handler(request, caller);
      line = encodeResponse({ id: request.id, result });
    } catch (err) {
      const e = err as Error & { code?: unknown };
      const code = typeof e.code === 'string' ? e.code : 'EINTERNAL';
      if (code === 'EINTERNAL') this.logger.warn({ err, command: request.command }, 'control command failed');
      line = encodeResponse({ id: request.id, error: { code, message: String(e.message ?? e) } });
      isError = true;
    }
    this.post({ type: 'response', connection, line, isError, costMs: (native.threadCpuMicros() - started) / 1000 });
  }

  private post(message: ToControlThread): void {
    if (this.closing === undefined) this.thread.postMessage(message);
  }

  /** Stops listening, ends every connection, ends the control thread and removes the socket file. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.exited) {
        const closed = new Promise<void>((resolve) => {
          this.thread.on('message', (m: FromControlThread) => m.type === 'closed' && resolve());
          this.thread.once('exit', () => resolve());
        });
        this.thread.ref(); // waiting for it must keep the process alive
        this.thread.postMessage({ type: 'close' } satisfies ToControlThread);
        await closed;
        await this.thread.terminate();
      }
      rmSync(this.path, { force: true });
    })();
    return this.closing;
  }
}
