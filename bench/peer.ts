/**
 * A peer process of the suite: `node peer.js <role> <config JSON>`. A role is a path of paths.ts (`path:<id>`)
 * or a role of a suite (sessions.ts, arena.ts, death.ts). It tells the bench 'ready' over IPC, answers numbered commands —
 * its own (`cpu`, `stop`) and the role's — and on `stop` closes what the role holds and exits.
 */
import { isControl, type Command, type Reply } from './harness.js';
import { pathById, type Served } from './paths.js';
import { ARENA_ROLES } from './suites/arena.js';
import { DEATH_ROLES } from './suites/death.js';
import { SESSION_ROLES } from './suites/sessions.js';

/** Handlers of a role's own commands. */
export type Commands = Record<string, (arg: unknown) => unknown>;

export interface RoleServed extends Served {
  commands?: Commands;
}

async function main(): Promise<void> {
  const [role, json] = process.argv.slice(2);
  const config = JSON.parse(json ?? 'null') as never;
  let served: RoleServed;
  if (role!.startsWith('path:')) {
    const path = pathById(role!.slice(5));
    if (!path.serve) throw new Error(`path ${path.id} has no peer side`);
    served = await path.serve(config);
  } else {
    const make = { ...SESSION_ROLES, ...ARENA_ROLES, ...DEATH_ROLES }[role!];
    if (!make) throw new Error(`unknown role ${role}`);
    served = await make(config);
  }
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await served.close();
    })());
  process.on('message', (m: unknown) => {
    if (!isControl(m) || m.ctl !== 'cmd') return;
    const { id, cmd, arg } = m as Command;
    const answer = (r: { ok: true; value: unknown } | { ok: false; error: string }) => process.send!({ ctl: 'reply', id, ...r } as Reply);
    const run = async (): Promise<unknown> => {
      if (cmd === 'cpu') return process.cpuUsage();
      if (cmd === 'stop') {
        await stop();
        setImmediate(() => process.exit(0));
        return null;
      }
      const handler = served.commands?.[cmd];
      if (!handler) throw new Error(`role ${role} has no command ${cmd}`);
      return handler(arg);
    };
    run().then(
      (value) => answer({ ok: true, value }),
      (err: Error) => answer({ ok: false, error: err?.stack ?? String(err) }),
    );
  });
  // The bench went away without stopping us: close gracefully, so nothing is left behind.
  process.on('disconnect', () => void stop().finally(() => process.exit(0)));
  process.send!({ ctl: 'ready', info: served.info });
  if (served.afterReady) setImmediate(() => served.afterReady!());
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
