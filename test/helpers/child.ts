/**
 * A real child process driven by JSON lines: commands go to its stdin, events come back on its stdout.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export type ChildEvent = Record<string, unknown> & { event: string };

export class Child {
  readonly process: ChildProcess;
  readonly events: ChildEvent[] = [];
  readonly stderr: string[] = [];
  private waiters: Array<{ match: (e: ChildEvent) => boolean; resolve: (e: ChildEvent) => void }> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(script: string, args: string[] = [], options: SpawnOptions & { wrapper?: string[] } = {}) {
    const { wrapper = [], ...spawnOptions } = options;
    const argv = [...wrapper, process.execPath, '--import', 'tsx', `${repoRoot}/test/fixtures/${script}`, ...args];
    this.process = spawn(argv[0]!, argv.slice(1), { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'], ...spawnOptions });
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      let e: ChildEvent;
      try {
        e = JSON.parse(line) as ChildEvent;
      } catch {
        return;
      }
      this.events.push(e);
      for (const w of [...this.waiters]) {
        if (w.match(e)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    });
    createInterface({ input: this.process.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => this.process.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** Resolves with the first event (past or future) named `name` that matches `where`. */
  waitFor(name: string, where: (e: ChildEvent) => boolean = () => true, timeoutMs = 15_000): Promise<ChildEvent> {
    const match = (e: ChildEvent) => e.event === name && where(e);
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`child ${this.pid}: no '${name}' event within ${timeoutMs} ms; stderr:\n${this.stderr.join('\n')}`));
      }, timeoutMs);
      this.waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }

  send(command: Record<string, unknown>): void {
    this.process.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.process.kill(signal);
    return this.exited;
  }

  /** Ends the child if it still runs (for afterEach): SIGTERM first — fixtures shut down gracefully on it, so a
   *  failed test leaves nothing behind — and SIGKILL if it is still there after 2 s (stopped, hung). */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(timer);
  }
}
