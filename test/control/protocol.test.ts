/**
 * The control socket under load and abuse, against a live server process with live sessions: requests answered
 * by id out of order, the inactivity timeout, the error policy, and fuzzed input — none of which may crash the
 * server or disturb its sessions.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/index.js';
import { liveServer, RawControl, type LiveServer } from './helpers.js';

const limits = { idleTimeoutMs: 600, maxConsecutiveErrors: 5, maxErrors: 12, maxConnections: 8 };

describe('control socket protocol', () => {
  let live: LiveServer;
  beforeAll(async () => {
    live = await liveServer({ clients: 3, transports: ['shm', 'socket'], serverOptions: { control: limits } });
  }, 60_000);
  afterAll(async () => {
    await live?.stop();
  });

  /** The server still answers, every session is open and was never faulted, and traffic still flows. */
  async function healthy(before: number[]): Promise<void> {
    expect(live.server.process.exitCode).toBeNull();
    // Right after a flood the busy budget may still drop new control connections: try again a few times.
    let status: any;
    for (let attempt = 0; status === undefined; attempt++) {
      try {
        const client = await ControlClient.connect(live.controlPath);
        status = await client.request('status').finally(() => client.close());
      } catch (err) {
        if (attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(status.counters.faulted).toBe(0);
    expect(status.counters.active).toBe(live.sessionIds.length);
    const after = await live.roundTrips();
    after.forEach((n, i) => expect(n).toBeGreaterThan(before[i]!));
    for (const c of live.clients) expect(c.events.some((e) => e.event === 'hosed' || e.event === 'close')).toBe(false);
  }

  it('answers many requests in flight, each once, by id, in any order', async () => {
    const raw = await RawControl.open(live.controlPath);
    // A slow command first (metrics collects every arena), then many quick ones in the same write.
    const ids = ['m', ...Array.from({ length: 40 }, (_, i) => i + 1)];
    const lines = ids.map((id, i) => JSON.stringify({ id, command: i === 0 ? 'metrics' : ['status', 'sessions', 'arenas'][i % 3] }));
    raw.write(`${lines.join('\n')}\n`);
    const got = await raw.waitLines(ids.length);
    expect(got.map((l) => l.id).sort()).toEqual([...ids].sort());
    for (const l of got) expect(l.error).toBeUndefined();
    raw.close();

    // Through the client API too: 200 at once, matched by id.
    const client = await ControlClient.connect(live.controlPath);
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => client.request(i % 2 === 0 ? 'status' : 'sessions')));
    results.forEach((r, i) => (i % 2 === 0 ? expect((r as any).app).toBe(live.serverApp) : expect(Array.isArray(r)).toBe(true)));
    client.close();
  }, 60_000);

  it('a session close answered after requests sent behind it (out of order)', async () => {
    // close waits for the client process's goodbye; status right behind it is answered at once.
    const extra = await liveServer({ clients: 1, transports: ['shm'] });
    try {
      const raw = await RawControl.open(extra.controlPath);
      raw.write(`${JSON.stringify({ id: 'close', command: 'close', args: { session: extra.sessionIds[0] } })}\n${JSON.stringify({ id: 'status', command: 'status' })}\n`);
      const got = await raw.waitLines(2);
      expect(got.map((l) => l.id)).toEqual(['status', 'close']);
      expect(got[1]!.result).toMatchObject({ session: extra.sessionIds[0], state: 'closed' });
      raw.close();
    } finally {
      await extra.stop();
    }
  }, 60_000);

  it('structured errors for malformed requests, echoing the id when there is one', async () => {
    const raw = await RawControl.open(live.controlPath);
    // Four errors: one short of the cut-off. Parse errors are answered at once, a command when it is done.
    raw.write('{"id": 1, "command": "status"}\nnot json\n[1,2]\n{"id":2,"command":"nope"}\n{"id":3,"command":"session","args":{}}\n');
    const got = await raw.waitLines(5);
    expect(got.find((l) => l.id === 1)).toMatchObject({ result: { app: live.serverApp } });
    expect(got.filter((l) => l.id !== 1).map((l) => [l.id, l.error?.code])).toEqual([
      [null, 'EPARSE'], [null, 'EBADREQUEST'], [2, 'EUNKNOWNCOMMAND'], [3, 'EBADREQUEST'],
    ]);
    raw.close();
  }, 30_000);

  it('closes a connection idle past the timeout (server timer); one that keeps asking stays', async () => {
    const idle = await RawControl.open(live.controlPath);
    const busy = await RawControl.open(live.controlPath);
    const started = Date.now();
    let n = 0;
    while (Date.now() - started < 3 * limits.idleTimeoutMs) {
      busy.write(`${JSON.stringify({ id: ++n, command: 'status' })}\n`);
      await new Promise((r) => setTimeout(r, limits.idleTimeoutMs / 4));
    }
    await idle.closed;
    expect(idle.lines).toEqual([{ id: null, error: { code: 'ETIMEDOUT', message: expect.any(String) } }]);
    expect(busy.lines.filter((l: any) => l.id === null)).toEqual([]);
    expect(busy.isClosed).toBe(false);
    busy.close();
  }, 30_000);

  it('cuts off a client after N consecutive errors; other clients and every session are unaffected', async () => {
    const before = await live.roundTrips();
    const good = await ControlClient.connect(live.controlPath);
    const garbage = await RawControl.open(live.controlPath);
    for (let i = 0; i < 50; i++) {
      garbage.write(randomBytes(200).toString('latin1').replace(/\n/g, ' ') + '\n');
      if (i % 10 === 0) expect(((await good.request('status')) as any).app).toBe(live.serverApp);
    }
    await garbage.closed;
    const last = garbage.lines.at(-1)!;
    expect(last).toMatchObject({ id: null, error: { code: 'ECUTOFF' } });
    expect(garbage.lines.filter((l) => l.id === null && l.error.code !== 'ECUTOFF')).toHaveLength(limits.maxConsecutiveErrors);
    expect(((await good.request('sessions')) as any[]).length).toBe(live.sessionIds.length);
    good.close();
    await healthy(before);
  }, 60_000);

  it('cuts off a client after M errors in all, even with successes between them', async () => {
    const raw = await RawControl.open(live.controlPath);
    for (let i = 0; i < 40 && !raw.isClosed; i++) {
      raw.write(`${JSON.stringify({ id: i, command: 'status' })}\n{"id":"bad${i}","command":"nope"}\n`);
      await raw.waitLines(2 * (i + 1), 2000);
    }
    await raw.closed;
    expect(raw.lines.filter((l) => l.error?.code === 'EUNKNOWNCOMMAND')).toHaveLength(limits.maxErrors);
    expect(raw.lines.at(-1)).toMatchObject({ id: null, error: { code: 'ECUTOFF' } });
  }, 30_000);

  it('refuses connections over the limit with a clear error', async () => {
    const held = await Promise.all(Array.from({ length: limits.maxConnections }, () => RawControl.admitted(live.controlPath)));
    let extra = await RawControl.open(live.controlPath);
    await extra.closed;
    // A connection dropped without a word was dropped by the busy budget (earlier tests' garbage): try again.
    for (let i = 0; i < 10 && extra.lines.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 150));
      extra = await RawControl.open(live.controlPath);
      await extra.closed;
    }
    expect(extra.lines).toEqual([{ id: null, error: { code: 'ETOOMANYCONNECTIONS', message: expect.any(String) } }]);
    held.forEach((c) => c.close());
    await Promise.all(held.map((c) => c.closed));
  }, 30_000);

  it('fuzz: random bytes, huge lines, deep nesting and thousands of connections never crash it nor slow its sessions to a stop', async () => {
    const before = await live.roundTrips();
    // Random bytes (newlines included) on a few connections at once.
    await Promise.all(Array.from({ length: 4 }, async () => {
      const raw = await RawControl.open(live.controlPath);
      for (let i = 0; i < 30 && !raw.isClosed; i++) raw.write(randomBytes(1 + Math.floor(Math.random() * 4000)));
      raw.close();
    }));
    // A line far over the limit, then a good request on the same connection: ETOOLARGE, then the answer.
    const huge = await RawControl.admitted(live.controlPath);
    const chunk = Buffer.alloc(1 << 20, 0x61);
    for (let i = 0; i < 8; i++) huge.write(chunk);
    huge.write(`\n${JSON.stringify({ id: 'after', command: 'status' })}\n`);
    const got = await huge.waitLines(2);
    expect(got[0]).toMatchObject({ id: null, error: { code: 'ETOOLARGE' } });
    expect(got[1]).toMatchObject({ id: 'after', result: { app: live.serverApp } });
    huge.close();
    // Deeply nested JSON, within the size limit — as a request, hidden in args, as objects — is refused before
    // JSON.parse (which takes ~50 ms for a 30 000-deep array); the connection goes on.
    const deep = await RawControl.admitted(live.controlPath);
    const depth = 30_000;
    deep.write(`${'['.repeat(depth)}${']'.repeat(depth)}\n`);
    deep.write(`{"id":"deep","command":"status","args":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}\n`);
    deep.write(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}\n`);
    deep.write(`{"id":"shallow","command":"status","args":{"x":[[["]]]]]]]]"]]]}}\n`);
    const deepLines = await deep.waitLines(4);
    for (const l of deepLines.slice(0, 3)) expect(l).toMatchObject({ id: null, error: { code: 'EBADREQUEST', message: expect.stringMatching(/nested deeper/) } });
    expect(deepLines[3]).toMatchObject({ id: 'shallow', result: { app: live.serverApp } });
    deep.close();
    // Thousands of connections, 64 at a time (the limit is 8: most are refused), each sending junk or nothing.
    let opened = 0;
    let failed = 0;
    const total = 2000;
    const worker = async () => {
      while (opened + failed < total) {
        const k = opened + failed;
        try {
          const c = await RawControl.open(live.controlPath);
          opened++;
          if (k % 3 === 0) c.write(randomBytes(64));
          if (k % 3 === 1) c.write('{"id":1,"command":"status"}\n');
          c.close();
        } catch {
          failed++; // the listen backlog overflowed: refused by the kernel, which is fine
        }
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    expect(opened).toBeGreaterThan(total / 2);
    await healthy(before);
  }, 120_000);
});
