/**
 * What a soak scenario is. A scenario drives a server agent and a client agent into one phase of a session's
 * life and makes the kill happen at a random point of it; the runner (runner.ts) does everything else — fresh
 * apps, agents, waiting for the survivor, the listings after each cleanup stage, the figures.
 *
 * To add one: a file in soak/scenarios/ exporting a {@link Scenario}, and one line in soak/scenarios/index.ts.
 */
import type { ChildEvent } from '../test/helpers/child.js';
import type { Agent } from './agents.js';

/** Who gets SIGKILLed. */
export type Target = 'client' | 'server' | 'both';

/** A small seeded generator (mulberry32): a run is repeatable with its --seed. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform in [lo, hi). */
  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

export interface TrialContext {
  readonly rng: Rng;
  /** Serving this trial's server app (it answered 'listening'). */
  readonly server: Agent;
  /** Ready, not connected yet. */
  readonly client: Agent;
  /** Who the runner picked to die (from the scenario's `targets`). */
  readonly target: Target;
  /** The `connect` command for this trial's apps (the client agent takes it as is, or inside a loop). */
  readonly connectCommand: Record<string, unknown>;
  /** Connects the client; resolves on 'open' (a refusal or no answer within 10 s fails the trial). */
  connect(): Promise<void>;
  /** Waits for an event of `agent` newer than the trial start; no event within 10 s counts as a hang. */
  expect(agent: Agent, event: string, where?: (e: ChildEvent) => boolean): Promise<ChildEvent>;
  /** SIGKILLs the target(s) now, from the runner (the kill time is taken just before the signal). */
  kill(target?: Target): void;
  /** Waits `ms` (fractions allowed: setTimeout has ~1 ms resolution; for µs-exact kills use an agent's close-kill). */
  sleep(ms: number): Promise<void>;
  /** Free-form facts about this trial, kept in the JSON result (e.g. the kill delay). */
  note(key: string, value: unknown): void;
}

export interface Scenario {
  /** Short unique name, used by --scenarios. */
  readonly name: string;
  /** The phase it kills in (reported with every figure). */
  readonly phase: string;
  /** Whom it may kill (default all three); the runner picks one per trial. */
  readonly targets?: readonly Target[];
  /** Drives the agents and makes the kill happen (with ctx.kill, or an agent's close-kill). Returns after it. */
  run(ctx: TrialContext): Promise<void>;
}
