/**
 * The one helper for real child processes in the tests (and the soak). A child talks in lines on its stdout:
 * every line can be awaited by prefix ({@link Child.line}, consuming), and every line that is a JSON object is
 * also kept as an event ({@link Child.waitFor}, not consuming) — fixtures print `{"event": …}` (session and
 * channel fixtures) or `{"t": …}` (the arena fixture). Commands go to its stdin, as a raw line or as JSON.
 *
 * Children inherit the environment, and with it the run tag of the leak gate (names.ts) and, under
 * native/test-asan.sh, SHMX_ADDON and LD_PRELOAD.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Prefix that runs a command as user and group nobody (65534) with no supplementary groups. Needs root. */
export const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/**
 * How long a wait for a child's event or line lasts by default: a deadline for "never", not a measure of speed —
 * a fixture under tsx has been seen to take 34 s to boot on a 2-core machine at load 30.
 */
export const DEFAULT_WAIT_MS = 60_000;

/** A JSON line of a child. Session and channel fixtures name it with `event`, the arena fixture with `t`. */
export type ChildEvent = Record<string, unknown> & { event?: string };

/** How a child ended, with everything it printed. */
export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ChildOptions extends SpawnOptions {
  /** Argv prefix, e.g. {@link AS_NOBODY}. */
  wrapper?: string[];
}

/** Marks a {@link Child.command} spawn (module-private, so the constructor's public form stays a fixture). */
const PROGRAM = Symbol('program');

type Waiter<T> = { match: (x: T) => boolean; resolve: (x: T) => void; reject: (err: Error) => void };

export class Child {
  readonly process: ChildProcess;
  /** Every JSON-object line, in order. */
  readonly events: ChildEvent[] = [];
  /** Called with each event as it arrives (after it is stored in {@link events}). */
  onEvent: ((e: ChildEvent) => void) | undefined;
  /** Resolves once the child exited and its stdout and stderr are closed. */
  readonly exited: Promise<ChildResult>;
  private stdoutText = '';
  private stderrText = '';
  private ended = false;
  /** Lines not yet taken by {@link line}. */
  private lines: string[] = [];
  private lineWaiters: Array<Waiter<string>> = [];
  private eventWaiters: Array<Waiter<ChildEvent>> = [];

  /**
   * Runs a fixture of test/fixtures (`script`, e.g. 'session-server.ts') under node with tsx. Use
   * {@link Child.command} for any other program.
   */
  constructor(script: string, args: string[] = [], options: ChildOptions & { [PROGRAM]?: true } = {}) {
    const { wrapper = [], [PROGRAM]: isProgram, ...spawnOptions } = options;
    const run = isProgram ? [script] : [process.execPath, '--import', 'tsx', `${repoRoot}/test/fixtures/${script}`];
    const argv = [...wrapper, ...run, ...args];
    this.process = spawn(argv[0]!, argv.slice(1), { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'], ...spawnOptions });
    this.exited = this.watch();
  }

  /** Runs any program (`command`, looked up in PATH) with the same line and event handling. */
  static command(command: string, args: string[] = [], options: ChildOptions = {}): Child {
    return new Child(command, args, { ...options, [PROGRAM]: true });
  }

  private watch(): Promise<ChildResult> {
    const proc = this.process;
    let partialOut = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      this.stdoutText += chunk;
      partialOut += chunk;
      let nl: number;
      while ((nl = partialOut.indexOf('\n')) >= 0) {
        const line = partialOut.slice(0, nl);
        partialOut = partialOut.slice(nl + 1);
        this.onLine(line);
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      this.stderrText += chunk;
    });
    return new Promise((resolve, reject) => {
      proc.once('error', reject);
      proc.once('close', (code, signal) => {
        if (partialOut !== '') this.onLine(partialOut);
        this.ended = true;
        // Nothing more can come: whoever still waits is told now, not at its timeout.
        const why = new Error(`child ${proc.pid} ended (${code ?? signal}) first; stderr:\n${this.stderrText}`);
        for (const w of this.lineWaiters.splice(0)) w.reject(why);
        for (const w of this.eventWaiters.splice(0)) w.reject(why);
        resolve({ code, signal, stdout: this.stdoutText, stderr: this.stderrText });
      });
    });
  }

  private onLine(line: string): void {
    const i = this.lineWaiters.findIndex((w) => w.match(line));
    if (i >= 0) this.lineWaiters.splice(i, 1)[0]!.resolve(line);
    else this.lines.push(line);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return;
    const e = parsed as ChildEvent;
    this.events.push(e);
    this.onEvent?.(e);
    for (const w of [...this.eventWaiters]) {
      if (w.match(e)) {
        this.eventWaiters.splice(this.eventWaiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** What the child printed on stderr so far. */
  get stderr(): string {
    return this.stderrText;
  }

  /** True until the child has exited. */
  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /**
   * Resolves with the first event (past or future) named `name` (its `event` field) that matches `where`, or,
   * given a predicate, the first event it accepts. Rejects when the child ends without one, or after the timeout.
   */
  waitFor(name: string, where?: (e: ChildEvent) => boolean, timeoutMs?: number): Promise<ChildEvent>;
  waitFor(match: (e: ChildEvent) => boolean, timeoutMs?: number): Promise<ChildEvent>;
  waitFor(
    what: string | ((e: ChildEvent) => boolean),
    whereOrTimeout?: ((e: ChildEvent) => boolean) | number,
    timeout?: number,
  ): Promise<ChildEvent> {
    let match: (e: ChildEvent) => boolean;
    let timeoutMs: number;
    let label: string;
    if (typeof what === 'string') {
      const where = typeof whereOrTimeout === 'function' ? whereOrTimeout : () => true;
      match = (e) => e.event === what && where(e);
      timeoutMs = timeout ?? DEFAULT_WAIT_MS;
      label = `'${what}' event`;
    } else {
      match = what;
      timeoutMs = typeof whereOrTimeout === 'number' ? whereOrTimeout : DEFAULT_WAIT_MS;
      label = 'matching event';
    }
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return this.await(this.eventWaiters, match, timeoutMs, label);
  }

  /** Resolves with the first stdout line starting with `prefix` (already printed or still to come) and takes it. */
  line(prefix: string, timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    const match = (l: string) => l.startsWith(prefix);
    const i = this.lines.findIndex(match);
    if (i >= 0) return Promise.resolve(this.lines.splice(i, 1)[0]!);
    return this.await(this.lineWaiters, match, timeoutMs, `line '${prefix}'`);
  }

  /** Parses the JSON after `prefix ` in the next such line. */
  async json<T>(prefix: string, timeoutMs?: number): Promise<T> {
    const l = await this.line(prefix, timeoutMs);
    return JSON.parse(l.slice(prefix.length).trim()) as T;
  }

  private await<T>(list: Array<Waiter<T>>, match: (x: T) => boolean, timeoutMs: number, label: string): Promise<T> {
    if (this.ended) return Promise.reject(new Error(`child ${this.pid} ended before ${label}; stderr:\n${this.stderrText}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        list.splice(list.indexOf(waiter), 1);
        reject(new Error(`child ${this.pid}: no ${label} within ${timeoutMs} ms; stderr:\n${this.stderrText}`));
      }, timeoutMs);
      const waiter: Waiter<T> = {
        match,
        resolve: (x) => (clearTimeout(timer), resolve(x)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      list.push(waiter);
    });
  }

  /** Writes a command: a string as one line, anything else as one JSON line. */
  send(command: string | Record<string, unknown>): void {
    this.process.stdin!.write(`${typeof command === 'string' ? command : JSON.stringify(command)}\n`);
  }

  /** Sends `signal` (default SIGKILL) if the child still runs; resolves when it is gone. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ChildResult> {
    if (this.running) this.process.kill(signal);
    return this.exited;
  }

  /** Ends the child if it still runs (for afterEach): SIGTERM first — fixtures shut down gracefully on it, so a
   *  failed test leaves nothing behind — and SIGKILL if it is still there after 2 s (stopped, hung). */
  async stop(): Promise<void> {
    if (!this.running) {
      await this.exited;
      return;
    }
    this.process.kill('SIGCONT'); // a stopped child would not act on SIGTERM
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(timer);
  }
}
