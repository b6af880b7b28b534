/**
 * The control socket lives on its own thread: what a control client sends is read, judged and answered with an
 * error there, even while the server's event loop — the sessions' — is stuck.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SessionServer, Universe } from '../../src/index.js';
import { resolveControlLimits } from '../../src/control/control-limits.js';
import { ControlListener } from '../../src/control/control-listener.js';
import { ControlServer } from '../../src/control/control-server.js';
import { defaultLogger } from '../../src/log.js';
import { ControlStats } from '../../src/control/control-stats.js';
import { encodeResponse } from '../../src/control/protocol.js';
import { Child } from '../helpers/child.js';
import { testRunDirectory, testUniverse } from '../helpers/universe.js';
import { RawControl } from './helpers.js';

/** A control client as plain Node: sends `input`, prints the first line it gets back, or "nothing" after `waitMs`. */
const client = `
const socket = require('node:net').connect(process.argv[1]);
socket.on('connect', () => socket.write(process.argv[2]));
let text = '';
socket.on('data', (d) => { text += d; if (text.includes('\\n')) { process.stdout.write(text.slice(0, text.indexOf('\\n'))); process.exit(0); } });
setTimeout(() => { process.stdout.write('nothing'); process.exit(0); }, Number(process.argv[3]));
`;

describe('the control thread', () => {
  it('answers malformed input while the sessions\' event loop is blocked', async () => {
    const t = testUniverse();
    const server = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp });
    try {
      const path = server.controlSocketPath!;
      // execFileSync blocks this thread — the server's — until the client exits: only another thread can answer.
      const run = (input: string, waitMs = 20_000) => execFileSync(process.execPath, ['-e', client, path, input, String(waitMs)], { encoding: 'utf8' });
      expect(JSON.parse(run('not json\n'))).toMatchObject({ id: null, error: { code: 'EPARSE' } });
      expect(JSON.parse(run(`${'['.repeat(10_000)}\n`))).toMatchObject({ id: null, error: { code: 'EBADREQUEST' } });
      expect(JSON.parse(run(`${'x'.repeat(100 << 10)}\n`))).toMatchObject({ id: null, error: { code: 'ETOOLARGE' } });
      // A well-formed request needs the server's thread: it is answered once that thread is free.
      expect(run('{"id":1,"command":"status"}\n', 1000)).toBe('nothing');
    } finally {
      await server.close();
    }
  }, 120_000);

  it('a program that starts and closes a server ends by itself, exit code 0', async () => {
    const t = testUniverse();
    const child = new Child('start-close.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
    await child.waitFor('closed');
    expect((await child.exited).code).toBe(0);
  }, 120_000);

  it('charges what a command cost the server\'s thread to the busy budget, as the thread\'s own work', async () => {
    // The listener as the control thread runs it, here with a stand-in for the server's side that answers at
    // once and says each command cost `args.costMs` of its CPU time.
    const path = `${testRunDirectory()}/budget.ctl`;
    const stats = new ControlStats();
    const listener: ControlListener = await ControlListener.listen(path, resolveControlLimits({ busyBudgetMs: 5 }), stats, {
      request: (connection, request) =>
        listener.respond(connection, encodeResponse({ id: request.id, result: 'ok' }), false, Number(request.args['costMs'])),
      log: () => {},
    });
    try {
      const raw = await RawControl.open(path);
      raw.write('{"id":1,"command":"status","args":{"costMs":0}}\n');
      await raw.waitLines(1);
      expect(stats.get('throttles')).toBe(0); // this thread's own work for one request is far below 5 ms
      raw.write('{"id":2,"command":"status","args":{"costMs":50}}\n');
      await raw.waitLines(2);
      expect(raw.lines.map((l) => l.id)).toEqual([1, 2]);
      expect(stats.get('throttles')).toBe(1);
      raw.close();
    } finally {
      await listener.close();
    }
  });

  it('a control thread that died does not stop the server from closing', async () => {
    const path = `${testRunDirectory()}/dead.ctl`;
    const control = await ControlServer.listen(path, { mode: 0o600 }, () => 'ok', defaultLogger());
    const thread = (control as unknown as { thread: import('node:worker_threads').Worker }).thread;
    await thread.terminate(); // as a bug in the thread would end it
    await control.close(); // resolves: nothing waits for the dead thread's answer
    expect(existsSync(path)).toBe(false);
  });
});
