/**
 * The crash-recovery soak: trial after trial, a scenario (soak/scenarios/) drives a server agent and a client
 * agent into one phase of a session's life and SIGKILLs the client, the server or both at a random point of it.
 * After each kill the runner checks, with its own listing of /dev/shm and /dev/mqueue (test/helpers/objects.ts,
 * plain `fs`, not shmx):
 *
 *   1. survivor — after the survivor noticed (or closed) and settled: nothing of the trial may be left except
 *      what the design leaves to later stages (the live server's app arena; objects of the dead process when
 *      the survivor had no session with it to notice the death by);
 *   2. restart  — after the next server of the app started (its start-up sweep) on the stopped old one;
 *   3. sweep    — after `shmx sweep --server-app <app>` (run when something is left, and every --sweep-every trials).
 *
 * It counts kills, leaks by stage, hangs (an expected event missing for 10 s), crashes (an agent that died
 * without being killed, or threw), sequence errors, and the death-detection latency: SIGKILL → the survivor's
 * 'hosed' (both times CLOCK_MONOTONIC, the same clock in every process).
 */
import { rmSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { parseResourceName } from '../src/index.js';
import { Child, repoRoot, type ChildEvent } from '../test/helpers/child.js';
import { uniqueApp } from '../test/helpers/names.js';
import { listingPaths, listObjects, removeListed } from '../test/helpers/objects.js';
import { testRunDirectory } from '../test/helpers/universe.js';
import { Agent, AgentPool, type AgentMode } from './agents.js';
import { Rng, type Scenario, type Target, type TrialContext } from './scenario.js';
import { scenarios as allScenarios } from './scenarios/index.js';

export interface SoakOptions {
  /** Stop once this many SIGKILLs were delivered. */
  kills: number;
  seed?: number;
  /** Names of the scenarios to run (default: all). */
  scenarios?: string[];
  /** Only these targets (e.g. ['server'] to aim at one case). */
  targets?: Target[];
  mode?: AgentMode;
  /** Run `shmx sweep` every this many trials even when nothing is left (default 10). */
  sweepEvery?: number;
  /** An expected event missing this long is a hang (default 10 000 ms). */
  hangMs?: number;
  /** Trials run side by side (default 1). More gets more kills per minute on a loaded machine, but the
   *  latency figures then include the other trials' load, and a seed no longer fixes the order. */
  concurrency?: number;
  /** Agents kept booted ahead (default 2). */
  spares?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export type Stage = 'survivor' | 'restart' | 'sweep';

export interface TrialRecord {
  trial: number;
  scenario: string;
  phase: string;
  target: Target;
  kills: number;
  notes: Record<string, unknown>;
  detectionMs?: number;
  leaks: Partial<Record<Stage, string[]>>;
  problems: string[];
}

export interface SoakResult {
  seed: number;
  mode: AgentMode;
  kills: number;
  trials: number;
  durationS: number;
  byScenario: Record<string, { trials: number; kills: number; detection: { samples: number; p50Ms: number | null; p99Ms: number | null } }>;
  leaks: Record<Stage, number>;
  hangs: number;
  crashes: number;
  /** Sequence errors and unexpected errors reported by agents. */
  errors: number;
  /** EARENABUSY met (and retried) by agents: a live peer held a page lock past 100 ms (load). Not a failure. */
  busy: number;
  /** Connects the server refused with ETIMEDOUT (its 2 s handshake deadline, a client slowed by load), retried. */
  connectRetries: number;
  /** The flood scenario's runs that completed, and its stalls (each also counted in `errors`). */
  flood: { runs: number; stalls: number };
  detection: { samples: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null };
  machine: { cores: number; loadAtStart: number[]; loadAtEnd: number[] };
  /** Only the trials with a leak or a problem (all of them are in `trialsAll` when asked for). */
  failures: TrialRecord[];
  trialsAll?: TrialRecord[];
}

class Hang extends Error {}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function runSoak(options: SoakOptions): Promise<SoakResult & { trialsAll: TrialRecord[] }> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const mode = options.mode ?? 'dist';
  const hangMs = options.hangMs ?? 10_000;
  const sweepEvery = options.sweepEvery ?? 10;
  const log = options.log ?? (() => {});
  const rng = new Rng(seed);
  const chosen = options.scenarios === undefined
    ? allScenarios
    : options.scenarios.map((n) => {
      const s = allScenarios.find((x) => x.name === n);
      if (s === undefined) throw new RangeError(`unknown scenario '${n}' (known: ${allScenarios.map((x) => x.name).join(', ')})`);
      return s;
    });
  const pool = new AgentPool(mode, options.spares ?? 2);
  const started = now();
  const loadAtStart = loadavg();
  const records: TrialRecord[] = [];
  const latencies: number[] = [];
  const totals = { kills: 0, hangs: 0, crashes: 0, errors: 0, busy: 0, connectRetries: 0, floodRuns: 0, stalls: 0, leaks: { survivor: 0, restart: 0, sweep: 0 } };
  const byScenario: Record<string, { trials: number; kills: number }> = {};
  const latencyOf: Record<string, number[]> = {};
  let trials = 0;

  /** Waits for an event of `agent` at or after `since`. */
  function expectEvent(agent: Agent, since: number, event: string, where: (e: ChildEvent) => boolean = () => true): Promise<ChildEvent> {
    return agent.child
      .waitFor(event, (e) => (e.at as number) >= since && where(e), hangMs)
      .catch((err: Error) => {
        throw new Hang(`no '${event}' from agent ${agent.pid}: ${err.message.split('\n')[0]}`);
      });
  }

  async function until(condition: () => boolean, ms: number): Promise<boolean> {
    const end = now() + ms;
    while (!condition()) {
      if (now() > end) return false;
      await sleep(5);
    }
    return true;
  }

  function sweepCli(serverApp: string): Child {
    const args = mode === 'dist'
      ? [join(repoRoot, 'dist', 'cli', 'main.js')]
      : ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'main.ts')];
    return Child.command(process.execPath, [...args, 'sweep', '--server-app', serverApp]);
  }

  /** One sequence of trials; `concurrency` of them run side by side, sharing the pool and the totals. */
  async function lane(): Promise<void> {
    let server: Agent | undefined;
    let client: Agent | undefined;
    try {
      while (totals.kills < options.kills) {
        const n = ++trials;
        const scenario: Scenario = rng.pick(chosen);
        const targets = (scenario.targets ?? ['client', 'server', 'both']).filter((t) => options.targets?.includes(t) ?? true);
        if (targets.length === 0) continue;
        const target = rng.pick(targets);
        const record: TrialRecord = { trial: n, scenario: scenario.name, phase: scenario.phase, target, kills: 0, notes: {}, leaks: {}, problems: [] };
        records.push(record);
        byScenario[scenario.name] ??= { trials: 0, kills: 0 };
        byScenario[scenario.name]!.trials++;

        const serverApp = uniqueApp('sks');
        const clientApp = uniqueApp('skc');
        const runDirectory = testRunDirectory();
        const definition = { apps: [{ name: clientApp }], servers: [{ name: serverApp, acceptedClients: [clientApp], runDirectory }] };
        const connectCommand = { cmd: 'connect', definition, clientApp, serverApp };
        const mine = (name: string): boolean => name.includes(`.${serverApp}.`);
        server ??= await pool.take();
        client ??= await pool.take();
        const s = server;
        const c = client;
        const since = now();
        s.opened.clear();
        c.opened.clear();

        const ctx: TrialContext = {
          rng, server: s, client: c, target, connectCommand,
          async connect() {
            c.send(connectCommand);
            const e = await Promise.race([expectEvent(c, since, 'open'), expectEvent(c, since, 'connect-error')]);
            if (e.event !== 'open') throw new Error(`connect failed: ${JSON.stringify(e)}`);
          },
          expect: (agent, event, where) => expectEvent(agent, since, event, where),
          kill(t = target) {
            if (t !== 'client') s.kill();
            if (t !== 'server') c.kill();
          },
          sleep,
          note(key, value) {
            record.notes[key] = value;
          },
        };

        let hung = false;
        try {
          s.send({ cmd: 'serve', definition, serverApp });
          const listening = await Promise.race([expectEvent(s, since, 'listening'), expectEvent(s, since, 'start-error')]);
          if (listening.event !== 'listening') throw new Error(`server did not start: ${JSON.stringify(listening)}`);
          await scenario.run(ctx);

          // The killed: gone (reaped) within the limit.
          for (const a of [s, c].filter((x) => x.doomed)) {
            const ended = await Promise.race([a.child.exited, sleep(hangMs).then(() => undefined)]);
            if (ended === undefined) throw new Hang(`killed agent ${a.pid} did not end`);
            if (ended.signal === 'SIGKILL') record.kills++;
          }
          // The survivor: every session it had ends (hosed or closed), then it settles.
          const survivors = [s, c].filter((a) => !a.doomed);
          for (const a of survivors) {
            if (!(await until(() => a.open.size === 0 || !a.alive, hangMs))) {
              const recent = a.child.events.filter((e) => (e.at as number) >= since && e.event !== 'busy').slice(-6);
              throw new Hang(`survivor ${a.pid} kept ${[...a.open].join(', ')} open; its last events: ${JSON.stringify(recent)}`);
            }
            a.send({ cmd: 'stop' });
            await expectEvent(a, since, 'settled');
          }
          // Detection latency: the survivor's first 'hosed' for a crashed peer, after the kill.
          const victim = [s, c].find((a) => a.doomed && a.killedAt !== undefined);
          const survivor = survivors[0];
          let sawFault = false;
          if (victim !== undefined && survivor !== undefined) {
            const hosed = survivor.child.events.find((e) => e.event === 'hosed' && (e.at as number) >= victim.killedAt! - 0.001);
            if (hosed !== undefined) {
              sawFault = true;
              if (hosed.reason === 'peer-crashed') {
                record.detectionMs = (hosed.at as number) - victim.killedAt!;
                latencies.push(record.detectionMs);
                (latencyOf[scenario.name] ??= []).push(record.detectionMs);
              }
            }
          }

          // Stage 1: after the survivor's cleanup (its sweep after a fault runs in the background: give it 3 s).
          if (survivor !== undefined) {
            const had = survivor.opened;
            const alivePids = new Set(survivors.filter((a) => a.alive).map((a) => a.pid));
            const leaksNow = (): string[] => listingPaths(listObjects(mine)).filter((path) => {
              const name = path.slice(path.lastIndexOf('/') + 1);
              const p = parseResourceName(name);
              if (p === null) return true;
              if ((p.kind === 'sa' || p.kind === 'mq') && p.session !== null && had.has(`${p.kind === 'sa' ? p.creator.pid : s.pid}:${p.session}`)) return true;
              const creatorAlive = alivePids.has(p.creator.pid);
              if (creatorAlive) return p.kind !== 'aa'; // the live server keeps its app arena until it closes
              return sawFault; // a dead creator's objects are the survivor's to sweep only if it saw the death
            });
            let left = leaksNow();
            const end = now() + 3000;
            while (left.length > 0 && now() < end) {
              await sleep(50);
              left = leaksNow();
            }
            if (left.length > 0) record.leaks.survivor = left;
          }

          // Stage 2: the next server start (the old one, if alive, closes first).
          if (s.alive) {
            s.send({ cmd: 'unserve' });
            await expectEvent(s, since, 'unserved');
          } else {
            server = await pool.take();
          }
          const s2 = server;
          const since2 = now();
          s2.send({ cmd: 'serve', definition, serverApp });
          const relisten = await Promise.race([expectEvent(s2, since2, 'listening'), expectEvent(s2, since2, 'start-error')]);
          if (relisten.event !== 'listening') throw new Error(`restarted server did not start: ${JSON.stringify(relisten)}`);
          const afterRestart = listingPaths(listObjects(mine));
          if (afterRestart.length > 0) record.leaks.restart = afterRestart;
          s2.send({ cmd: 'unserve' });
          await expectEvent(s2, since2, 'unserved');
        } catch (err) {
          if (err instanceof Hang) {
            hung = true;
            totals.hangs++;
            const recent = (a: Agent): string => JSON.stringify(a.child.events.filter((e) => (e.at as number) >= since && e.event !== 'busy').slice(-6));
            record.problems.push(`hang: ${err.message}; server's last events ${recent(s)}; client's ${recent(c)}`);
          } else {
            record.problems.push(`trial error: ${(err as Error).message}`);
            totals.errors++;
            // A live server keeps its app arena until it closes: close it, or the sweep stage would count it.
            const live = server;
            if (live !== undefined && live.alive) {
              const sinceUnserve = now();
              live.send({ cmd: 'unserve' });
              await expectEvent(live, sinceUnserve, 'unserved').catch(() => {});
            }
          }
        }

        // Crashes and agent-reported errors.
        const involved = [...new Set([s, c, server])].filter((a): a is Agent => a !== undefined);
        for (const a of involved) {
          if (!a.doomed && !a.alive) {
            const r = await a.child.exited;
            totals.crashes++;
            record.problems.push(`crash: agent ${a.pid} ended (${r.code ?? r.signal}) unasked; stderr: ${r.stderr.slice(-600)}`);
          }
          for (const e of a.child.events) {
            if ((e.at as number) < since) continue;
            if (e.event === 'uncaught') {
              totals.crashes++;
              record.problems.push(`crash: agent ${a.pid} threw: ${JSON.stringify(e)}`);
            } else if (e.event === 'busy') {
              totals.busy++;
            } else if (e.event === 'connect-retry') {
              totals.connectRetries++;
            } else if (e.event === 'flood-run') {
              totals.floodRuns++;
            } else if (e.event === 'seq-error' || e.event === 'error') {
              totals.errors++;
              if (e.stall === true) totals.stalls++;
              // The first few tell the story; the count is in the totals.
              if (record.problems.length < 8) record.problems.push(`${e.event}: agent ${a.pid}: ${JSON.stringify(e)}`);
            }
          }
        }
        totals.kills += record.kills;
        byScenario[scenario.name]!.kills += record.kills;

        // A hung or dead agent is not reused.
        for (const a of involved) {
          if (hung || !a.alive) {
            if (a.alive) await a.child.kill('SIGKILL');
            if (server === a) server = undefined;
            if (client === a) client = undefined;
          }
        }

        // Stage 3: `shmx sweep`, when something is left (and now and then regardless).
        const left = listObjects(mine);
        if (listingPaths(left).length > 0 || n % sweepEvery === 0) {
          const sweep = await sweepCli(serverApp).exited;
          if (sweep.code !== 0) record.problems.push(`shmx sweep exited ${sweep.code}: ${sweep.stderr.slice(-300)}`);
          const afterSweep = listingPaths(listObjects(mine));
          if (afterSweep.length > 0) record.leaks.sweep = afterSweep;
          removeListed(listObjects(mine)); // whatever even the sweep left: the machine stays clean
        }
        rmSync(runDirectory, { recursive: true, force: true });
        for (const stage of ['survivor', 'restart', 'sweep'] as const) if (record.leaks[stage] !== undefined) totals.leaks[stage]++;

        if (n % 25 === 0 || totals.kills >= options.kills) {
          const sorted = [...latencies].sort((x, y) => x - y);
          log(
            `trial ${n}: ${totals.kills} kills; leaks ${totals.leaks.survivor}/${totals.leaks.restart}/${totals.leaks.sweep} ` +
              `(survivor/restart/sweep); hangs ${totals.hangs}; crashes ${totals.crashes}; errors ${totals.errors}; ` +
              `flood runs ${totals.floodRuns} (stalls ${totals.stalls}); ` +
              `detection p50 ${percentile(sorted, 50)?.toFixed(2)} ms p99 ${percentile(sorted, 99)?.toFixed(2)} ms; ` +
              `load ${loadavg()[0]!.toFixed(1)}`,
          );
        }
        if (record.problems.length > 0 || Object.keys(record.leaks).length > 0) {
          log(`trial ${n} (${scenario.name}, ${target}): ${JSON.stringify({ leaks: record.leaks, problems: record.problems, notes: record.notes })}`);
        }
      }
    } finally {
      for (const a of [server, client]) if (a?.alive) await a.child.kill('SIGKILL');
    }
  }

  try {
    await Promise.all(Array.from({ length: options.concurrency ?? 1 }, () => lane()));
  } finally {
    await pool.close();
  }

  const sorted = [...latencies].sort((x, y) => x - y);
  return {
    seed,
    mode,
    kills: totals.kills,
    trials: records.length,
    durationS: (now() - started) / 1000,
    byScenario: Object.fromEntries(Object.entries(byScenario).map(([name, v]) => {
      const l = [...(latencyOf[name] ?? [])].sort((x, y) => x - y);
      return [name, { ...v, detection: { samples: l.length, p50Ms: percentile(l, 50), p99Ms: percentile(l, 99) } }];
    })),
    leaks: totals.leaks,
    hangs: totals.hangs,
    crashes: totals.crashes,
    errors: totals.errors,
    busy: totals.busy,
    connectRetries: totals.connectRetries,
    flood: { runs: totals.floodRuns, stalls: totals.stalls },
    detection: { samples: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? null },
    machine: { cores: cpus().length, loadAtStart, loadAtEnd: loadavg() },
    failures: records.filter((r) => r.problems.length > 0 || Object.keys(r.leaks).length > 0),
    trialsAll: records,
  };
}
