/**
 * Agent processes for the soak (agent.ts) and a pool that starts spares ahead of time, so a trial does not
 * wait for a process to boot after each kill.
 *
 * Two ways to run them: 'dist' — plain node on a JavaScript copy of agent.ts (type-stripped with TypeScript's
 * transpiler) using dist/ (build it first: `npm run soak` does); 'tsx' — agent.ts under tsx using src/ (slower to
 * start; what the short soak inside `npm test` uses, so it tests the sources as they are).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { Child, repoRoot, type ChildEvent } from '../test/helpers/child.js';

export type AgentMode = 'dist' | 'tsx';

/** A session id `<serverApp>.<serverPid>.<session>` as `<serverPid>:<session number>`, the two fields object
 *  names carry. */
export function sessionKey(id: string): string {
  const parts = id.split('.');
  return `${parts[parts.length - 2]}:${Number(parts[parts.length - 1])}`;
}

/** One agent process: a {@link Child} plus what the runner tracks about it. */
export class Agent {
  /** Sessions it has open (from its 'open'/'session' and 'close' events). */
  readonly open = new Set<string>();
  /** Every session it opened since the runner last cleared this: `<server pid>:<session number>`. */
  readonly opened = new Set<string>();
  /** When it was SIGKILLed (ms, CLOCK_MONOTONIC), by the runner or by another agent. */
  killedAt: number | undefined;
  /** Set when the runner (or a scenario) meant to kill it: any other death is a crash. */
  doomed = false;

  constructor(readonly child: Child) {
    child.onEvent = (e: ChildEvent) => {
      if ((e.event === 'open' || e.event === 'session') && typeof e.id === 'string') {
        this.open.add(e.id);
        this.opened.add(sessionKey(e.id));
      }
      if (e.event === 'close' && typeof e.id === 'string') this.open.delete(e.id);
    };
  }

  get pid(): number {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.running;
  }

  send(command: Record<string, unknown>): void {
    if (this.alive) this.child.send(command);
  }

  /** SIGKILL from the runner; the time is taken just before the signal. */
  kill(): void {
    this.doomed = true;
    this.killedAt = Number(process.hrtime.bigint()) / 1e6;
    this.child.process.kill('SIGKILL');
  }
}

/** Spawns agents and keeps `spares` of them booted and waiting. */
export class AgentPool {
  private readonly spares: Array<Promise<Agent>> = [];
  private readonly command: string[];
  private readonly env: NodeJS.ProcessEnv;

  constructor(mode: AgentMode, private readonly target = 2) {
    if (mode === 'dist') {
      // Plain JavaScript boots several times faster than tsx on a loaded machine: that is what lets a soak
      // reach a thousand kills in reasonable time.
      const dir = join(tmpdir(), `shmx-soak-${process.pid}`);
      mkdirSync(dir, { recursive: true });
      const strip = (source: string): string => {
        const js = ts.transpileModule(readFileSync(join(repoRoot, 'soak', `${source}.ts`), 'utf8'), {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        }).outputText;
        const file = join(dir, `${source}.mjs`);
        writeFileSync(file, js);
        return file;
      };
      this.command = [process.execPath, strip('agent')];
      this.env = {
        ...process.env,
        SHMX_SOAK_LIB: pathToFileURL(join(repoRoot, 'dist', 'index.js')).href,
        SHMX_SOAK_FLOOD: pathToFileURL(strip('flood-parts')).href,
      };
    } else {
      this.command = [process.execPath, '--import', 'tsx', join(repoRoot, 'soak', 'agent.ts')];
      this.env = {
        ...process.env,
        SHMX_SOAK_LIB: pathToFileURL(join(repoRoot, 'src', 'index.ts')).href,
        SHMX_SOAK_FLOOD: pathToFileURL(join(repoRoot, 'soak', 'flood-parts.ts')).href,
      };
    }
    this.fill();
  }

  private fill(): void {
    while (this.spares.length < this.target) {
      const spare = this.spawn();
      spare.catch(() => {}); // reported when taken, not as an unhandled rejection while it waits
      this.spares.push(spare);
    }
  }

  /** Boots an agent; one that fails to boot is tried again twice (a boot is not what the soak tests). */
  private async spawn(attempt = 1): Promise<Agent> {
    const child = Child.command(this.command[0]!, this.command.slice(1), { env: this.env });
    try {
      // Booting is not an event the soak times: on a loaded machine it can take many seconds.
      await child.waitFor('ready', undefined, 120_000);
    } catch (err) {
      await child.kill('SIGKILL');
      if (attempt >= 3) throw err;
      return this.spawn(attempt + 1);
    }
    return new Agent(child);
  }

  /** A booted agent (a spare if one is ready; another starts in its place). */
  async take(): Promise<Agent> {
    const next = this.spares.shift() ?? this.spawn();
    this.fill();
    return next;
  }

  /** Ends the spares. */
  async close(): Promise<void> {
    const spares = await Promise.allSettled(this.spares.splice(0));
    await Promise.all(spares.map((s) => (s.status === 'fulfilled' ? s.value.child.kill('SIGKILL') : undefined)));
  }
}
