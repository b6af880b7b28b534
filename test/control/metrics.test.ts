/**
 * Prometheus metrics (parsed by a real text-format parser), the hook into an app's own prom-client registry,
 * and the diagnostics_channel events — for a server in this process whose clients are real processes.
 */
import diagnostics from 'node:diagnostics_channel';
import { rmSync } from 'node:fs';
// @ts-expect-error the parser ships no types: it returns prom2json-shaped families
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { register as globalRegistry, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient, DIAGNOSTICS_CHANNELS, registerShmxMetrics, SessionServer, Universe } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { testUniverse } from '../helpers/universe.js';

interface Family { name: string; type: string; metrics: Array<{ labels?: Record<string, string>; value?: string; count?: string; buckets?: Record<string, string> }> }

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function serverWithClients(n: number, transports: string[]) {
  const { definition, serverApp, clientApp } = testUniverse();
  const server = await SessionServer.start({ universe: new Universe(definition), serverApp });
  cleanup.push(() => {
    rmSync(definition.servers[0]!.runDirectory!, { recursive: true, force: true });
  });
  cleanup.push(() => server.close());
  server.on('session', (s) => s.on('channel', (c) => c.on('message', (m) => {
    if (m.isRequest) void m.replyAsync(m.bytes).catch(() => {});
  })));
  const clients = Array.from({ length: n }, () => new Child('control-traffic.ts', [JSON.stringify({ definition, clientApp, serverApp, transports })]));
  cleanup.push(() => Promise.all(clients.map((c) => c.stop())).then(() => {}));
  await Promise.all(clients.map((c) => c.waitFor('ready')));
  return { server, clients, serverApp };
}

function family(families: Family[], name: string): Family {
  const f = families.find((x) => x.name === name);
  if (f === undefined) throw new Error(`no metric ${name}`);
  return f;
}

describe('metrics and diagnostics', () => {
  it('exposes Prometheus text that a real parser reads, with the numbers of the live server', async () => {
    const { server, serverApp } = await serverWithClients(2, ['shm', 'socket']);
    await new Promise((r) => setTimeout(r, 300)); // some traffic
    const control = await ControlClient.connect(server.controlSocketPath!);
    const { text, contentType } = (await control.request('metrics')) as { text: string; contentType: string };
    control.close();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusTextFormat(text) as Family[];
    for (const f of families) expect(f.name.startsWith('shmx_')).toBe(true);
    expect(family(families, 'shmx_sessions_active')).toMatchObject({ type: 'GAUGE', metrics: [{ labels: { server_app: serverApp }, value: '2' }] });
    expect(family(families, 'shmx_sessions_opened_total').metrics[0]!.value).toBe('2');
    expect(family(families, 'shmx_handshake_duration_seconds')).toMatchObject({ type: 'HISTOGRAM', metrics: [{ buckets: { '+Inf': '2' } }] });
    const messages = family(families, 'shmx_channel_messages_total');
    expect(messages.type).toBe('COUNTER');
    for (const transport of ['shm', 'socket']) {
      const m = messages.metrics.find((x) => x.labels!['transport'] === transport && x.labels!['direction'] === 'in');
      expect(Number(m!.value)).toBeGreaterThan(0);
    }
    expect(Number(family(families, 'shmx_arena_reserved_bytes').metrics.find((x) => x.labels!['scope'] === 'session')!.value)).toBeGreaterThan(0);
    for (const name of ['shmx_sessions_closed_total', 'shmx_sessions_refused_total', 'shmx_request_duration_seconds', 'shmx_arena_used_bytes',
      'shmx_sweeps_total', 'shmx_swept_objects_total', 'shmx_quota_refusals_total', 'shmx_channel_bytes_total', 'shmx_control_connections']) {
      family(families, name);
    }
    // Its own registry: nothing in prom-client's global one.
    expect((await globalRegistry.getMetricsAsJSON()).filter((m) => m.name.startsWith('shmx_'))).toEqual([]);
    // The hook: an app's registry includes shmx's metrics next to its own.
    const app = new Registry();
    registerShmxMetrics(app, server);
    const appText = await app.metrics();
    expect(appText).toContain(`shmx_sessions_active{server_app="${serverApp}"} 2`);
  }, 60_000);

  it('publishes session, channel, fault and sweep events on named channels; nothing subscribes once servers close', async () => {
    const seen: Array<[string, any]> = [];
    const listeners = Object.values(DIAGNOSTICS_CHANNELS).map((name) => {
      const fn = (message: unknown) => seen.push([name, message]);
      diagnostics.subscribe(name, fn);
      return () => diagnostics.unsubscribe(name, fn);
    });
    cleanup.push(() => listeners.forEach((off) => off()));
    const { server, clients, serverApp } = await serverWithClients(1, ['shm', 'mq']);
    const ofServer = (name: string) => seen.filter(([n, m]) => n === name && m.serverApp === serverApp && m.side === 'server').map(([, m]) => m);
    expect(ofServer(DIAGNOSTICS_CHANNELS.sessionOpen)).toEqual([expect.objectContaining({ handshakeMs: expect.any(Number), peer: expect.objectContaining({ pid: clients[0]!.pid }) })]);
    expect(ofServer(DIAGNOSTICS_CHANNELS.channelOpen).map((m) => m.transport).sort()).toEqual(['mq', 'shm']);
    await new Promise((r) => setTimeout(r, 200));
    await clients[0]!.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while (ofServer(DIAGNOSTICS_CHANNELS.sessionClose).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(ofServer(DIAGNOSTICS_CHANNELS.sessionFault)).toEqual([expect.objectContaining({ reason: 'peer-crashed', error: expect.any(Error) })]);
    expect(ofServer(DIAGNOSTICS_CHANNELS.sessionClose)).toEqual([expect.objectContaining({ reason: 'peer-crashed', durationMs: expect.any(Number) })]);
    const closedChannels = ofServer(DIAGNOSTICS_CHANNELS.channelClose);
    expect(closedChannels).toHaveLength(2);
    for (const c of closedChannels) expect(c.counters.messagesIn).toBeGreaterThan(0);
    // Requests the server did not send are not timed; a sweep through the control socket is published.
    const control = await ControlClient.connect(server.controlSocketPath!);
    await control.request('sweep', { dryRun: false });
    control.close();
    expect(seen.some(([n, m]) => n === DIAGNOSTICS_CHANNELS.sweep && m.serverApp === serverApp && m.dryRun === false)).toBe(true);
    const text = await server.metricsRegistry!.metrics();
    expect(text).toMatch(new RegExp(`shmx_sweeps_total\\{server_app="${serverApp}"\\} [1-9]`));
    expect(text).toContain(`shmx_sessions_closed_total{server_app="${serverApp}",reason="peer-crashed"} 1`);
    await server.close();
    listeners.forEach((off) => off());
    for (const name of Object.values(DIAGNOSTICS_CHANNELS)) expect(diagnostics.channel(name).hasSubscribers).toBe(false);
  }, 60_000);
});
