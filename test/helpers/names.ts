/**
 * The one naming scheme of the test suite. Every name a test gives to anything kernel-persistent — app names
 * (which every session, arena, queue and ledger name carries), direct segment and queue names, arena names —
 * contains the run tag, so the leak gate (test/global-setup.ts) can tell this run's objects from those of any
 * other run or program on the machine, and blames only its own.
 *
 * The tag is set once per `vitest` run (vitest.config.ts puts it in `SHMX_TEST_RUN`), reaches the workers
 * through `test.env`, and every child process a test starts inherits it. Code that builds a name outside these
 * helpers must still put {@link runTag} into it, or the gate cannot see what it leaves behind.
 */
import { randomBytes } from 'node:crypto';

/** The environment variable carrying the run tag. */
export const RUN_TAG_ENV = 'SHMX_TEST_RUN';

/** What a run tag looks like: a letter, then lower-case letters and digits, 6 to 12 in all (fits app names). */
export const RUN_TAG = /^[a-z][a-z0-9]{5,11}$/;

/** A fresh tag: 'r' and 5 random base-36 digits — about 6e7 values, so two concurrent runs do not collide. */
export function newRunTag(): string {
  const n = randomBytes(4).readUInt32LE(0) % 36 ** 5;
  return `r${n.toString(36).padStart(5, '0')}`;
}

function currentRunTag(): string {
  const fromEnv = process.env[RUN_TAG_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!RUN_TAG.test(fromEnv)) throw new RangeError(`${RUN_TAG_ENV}='${fromEnv}' must match ${RUN_TAG}`);
    return fromEnv;
  }
  // Outside vitest (a fixture or script run by hand): a tag of its own, inherited by its children.
  const tag = newRunTag();
  process.env[RUN_TAG_ENV] = tag;
  return tag;
}

/** This run's tag; part of every name below. */
export const runTag: string = currentRunTag();

let counter = 0;

/** This process within the run: the run tag and the pid in 5 base-36 digits (fixed width, so no pid's tag is a
 *  prefix of another's). */
export const processTag = `${runTag}${process.pid.toString(36).padStart(5, '0')}`;

/** `<processTag><counter, base 36>`: unique per run, process and call; [a-z0-9] only. */
export function uniqueTag(): string {
  return `${processTag}${(counter++).toString(36)}`;
}

/** A unique app name: `<role><uniqueTag>` (role: a few lower-case letters, e.g. 'srv', 'cli'). */
export function uniqueApp(role: string): string {
  const name = `${role}${uniqueTag()}`;
  if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(name)) throw new RangeError(`test app name '${name}' is not a valid app name (role too long?)`);
  return name;
}

/** A unique direct segment or queue name: `shmx.t.<role>.<uniqueTag>` (role: [a-z0-9_-], e.g. 'life'). */
export function uniqueObjectName(role: string): string {
  return `shmx.t.${role}.${uniqueTag()}`;
}

/** True for names made under this run's tag (by any process of the run). */
export function isThisRun(name: string): boolean {
  return name.includes(runTag);
}

/** True for names made under this run's tag by this very process. */
export function isThisProcess(name: string): boolean {
  return name.includes(processTag);
}
