/**
 * Every `shmx` command that asks a server, run as a real process against a live server process with two live
 * client processes whose channels (shm, socket, mq) carry requests the whole time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveServer, shmx, type LiveServer } from './helpers.js';

describe('shmx commands against a live server', () => {
  let live: LiveServer;
  beforeAll(async () => {
    live = await liveServer();
  }, 60_000);
  afterAll(async () => {
    await live?.stop();
  });
  const at = () => ['--run-dir', live.runDirectory];

  it('status: app, pid, uptime, version, limits, counters', async () => {
    const text = await shmx(['status', live.serverApp, ...at()]);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain(`server    ${live.serverApp} (pid ${live.server.pid})`);
    expect(text.stdout).toMatch(/sessions {2}2 open, 2 opened, 0 faulted/);
    const json = await shmx(['status', live.serverApp, '--json', ...at()]);
    const s = JSON.parse(json.stdout);
    expect(s).toMatchObject({ app: live.serverApp, pid: live.server.pid, version: '0.1.0', counters: { active: 2, opened: 2 } });
    expect(s.limits.maxSessions).toBe(128);
    expect(s.uptimeMs).toBeGreaterThan(0);
  }, 60_000);

  it('sessions: peers, state, traffic, arena use; session: each channel with its counters', async () => {
    const json = JSON.parse((await shmx(['sessions', live.serverApp, '--json', ...at()])).stdout) as any[];
    expect(json.map((s) => s.id).sort()).toEqual([...live.sessionIds].sort());
    for (const s of json) {
      expect(live.clients.map((c) => c.pid)).toContain(s.peer.pid);
      expect(s.state).toBe('open');
      expect(s.channels).toBe(3);
      expect(s.counters.messagesIn).toBeGreaterThan(0);
      expect(s.arenas.session.reservedBytes).toBeGreaterThan(0);
    }
    const text = await shmx(['sessions', live.serverApp, ...at()]);
    expect(text.stdout).toContain(live.sessionIds[0]);

    const id = live.sessionIds[0]!;
    const one = JSON.parse((await shmx(['session', live.serverApp, id, '--json', ...at()])).stdout);
    expect(one.channels.map((c: any) => c.transport).sort()).toEqual(['mq', 'shm', 'socket']);
    for (const c of one.channels) expect(c.counters.messagesIn).toBeGreaterThan(0);
    expect(one.channels.find((c: any) => c.transport === 'shm').ringFill).toBeDefined();
    const view = await shmx(['session', live.serverApp, id, ...at()]);
    expect(view.status).toBe(0);
    expect(view.stdout).toMatch(/CHANNEL +TRANSPORT/);
    const missing = await shmx(['session', live.serverApp, `${live.serverApp}.1.999`, ...at()]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('ENOSESSION');
  }, 60_000);

  it('arenas and resources list what the server holds', async () => {
    const arenas = JSON.parse((await shmx(['arenas', live.serverApp, '--json', ...at()])).stdout) as any[];
    expect(arenas.filter((a) => a.scope === 'session')).toHaveLength(2);
    expect(arenas.filter((a) => a.scope === 'app')).toHaveLength(1);
    const res = JSON.parse((await shmx(['resources', live.serverApp, '--json', ...at()])).stdout);
    expect(res.sockets).toContain(live.controlPath);
    for (const a of arenas) expect(res.objects.map((o: any) => o.name)).toContain(`${a.name}.h`);
  }, 60_000);

  it('metrics prints the exposition text', async () => {
    const m = await shmx(['metrics', live.serverApp, ...at()]);
    expect(m.status).toBe(0);
    expect(m.stdout).toContain(`shmx_sessions_active{server_app="${live.serverApp}"} 2`);
    expect(m.stdout).toMatch(/shmx_channel_messages_total\{server_app="[^"]+",transport="mq",direction="in"\} [1-9]/);
  }, 60_000);

  it('close ends one session (the client sees peer-closed); the other keeps its traffic', async () => {
    const [victim, other] = live.sessionIds;
    const before = await live.roundTrips();
    const closed = await shmx(['close', live.serverApp, victim!, '--reason', 'local-close', ...at()]);
    expect(closed.status).toBe(0);
    expect(closed.stdout).toContain(`closed ${victim}`);
    await live.clients[0]!.waitFor('close', (e) => e['reason'] === 'peer-closed');
    const after = await live.roundTrips();
    expect(after[1]).toBeGreaterThan(before[1]!);
    const sessions = JSON.parse((await shmx(['sessions', live.serverApp, '--json', ...at()])).stdout) as any[];
    expect(sessions.map((s) => s.id)).toEqual([other]);
    const bad = await shmx(['close', live.serverApp, other!, '--reason', 'because', ...at()]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('EBADREQUEST');
  }, 60_000);

  it('says clearly when no server of that app runs (exit 3)', async () => {
    for (const command of ['status', 'sessions', 'metrics', 'top']) {
      const r = await shmx([command, 'nosuchapp', '--run-dir', live.runDirectory]);
      expect(r.status).toBe(3);
      expect(r.stderr).toContain("no server of app 'nosuchapp' is running");
    }
  }, 60_000);
});
