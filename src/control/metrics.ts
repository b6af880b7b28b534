/**
 * Prometheus metrics of one SessionServer, with prom-client, in a Registry of its own (never prom-client's
 * global one: two servers in one process, or an app with its own metrics, must not collide).
 *
 * Counts that the server keeps anyway (sessions, refusals, arenas, channel traffic) are read when scraped;
 * what happens in between (handshakes, requests, channels that closed, sweeps) arrives on the diagnostics
 * channels (src/diagnostics.ts), filtered to this server's own sessions. Every series carries `server_app`.
 */
import { hasCode } from '../errors.js';
import diagnostics from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  DIAGNOSTICS_CHANNELS,
  type DiagnosticsChannelEvent,
  type DiagnosticsRequest,
  type DiagnosticsSessionFault,
  type DiagnosticsSessionOpen,
  type DiagnosticsSweep,
} from '../diagnostics.js';
import type { ControlServer } from './control-server.js';
import type { ControlTarget } from './target.js';

type Transport = 'shm' | 'mq' | 'socket';
const TRANSPORTS: Transport[] = ['shm', 'mq', 'socket'];
type Traffic = { messagesIn: number; messagesOut: number; bytesIn: number; bytesOut: number };
const zero = (): Traffic => ({ messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 });

/** The metrics of one server; `close()` unsubscribes. */
export class ServerMetrics {
  readonly registry = new Registry();
  /** Traffic of channels of this server's sessions that have closed (open ones are read when scraped). */
  private readonly retired: Record<Transport, Traffic> = { shm: zero(), mq: zero(), socket: zero() };
  private readonly subscriptions: Array<[string, (message: unknown) => void]> = [];
  /** Set once the control socket listens, for its own counters. */
  control: ControlServer | undefined;

  constructor(private readonly target: ControlTarget) {
    const app = { server_app: target.serverApp };
    const registers = [this.registry];
    const mine = (m: { serverApp: string; side: string }) => m.side === 'server' && m.serverApp === target.serverApp;

    new Gauge({ name: 'shmx_server_start_time_seconds', help: 'When the server started (Unix time).', labelNames: ['server_app'], registers,
      collect() { this.set(app, target.inspect().startedAt / 1000); } });
    new Counter({ name: 'shmx_sessions_opened_total', help: 'Sessions opened.', labelNames: ['server_app'], registers,
      collect() { this.reset(); this.inc(app, target.metrics.opened); } });
    new Gauge({ name: 'shmx_sessions_active', help: 'Sessions open now.', labelNames: ['server_app'], registers,
      collect() { this.set(app, target.metrics.active); } });
    new Gauge({ name: 'shmx_handshakes_pending', help: 'Connections in their handshake now.', labelNames: ['server_app'], registers,
      collect() { this.set(app, target.inspect().pendingHandshakes); } });
    new Counter({ name: 'shmx_sessions_closed_total', help: 'Sessions closed, by close reason.', labelNames: ['server_app', 'reason'], registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(target.metrics.closedByReason)) this.inc({ ...app, reason }, n);
      } });
    new Counter({ name: 'shmx_sessions_refused_total', help: 'Connections refused, by error code.', labelNames: ['server_app', 'code'], registers,
      collect() {
        this.reset();
        for (const [code, n] of Object.entries(target.metrics.refusedByReason)) this.inc({ ...app, code }, n);
      } });
    new Counter({ name: 'shmx_sessions_faulted_total', help: 'Sessions hosed (peer gone, protocol error, keep-alive timeout).', labelNames: ['server_app'], registers,
      collect() { this.reset(); this.inc(app, target.metrics.faulted); } });
    let quotaFaults = 0;
    new Counter({ name: 'shmx_quota_refusals_total', help: 'Refusals with code EQUOTA (sessions refused, sessions faulted).', labelNames: ['server_app'], registers,
      collect() { this.reset(); this.inc(app, (target.metrics.refusedByReason['EQUOTA'] ?? 0) + quotaFaults); } });

    const handshake = new Histogram({ name: 'shmx_handshake_duration_seconds', help: 'Accept to READY of opened sessions.', labelNames: ['server_app'], registers,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2] });
    const requests = new Histogram({ name: 'shmx_request_duration_seconds', help: 'Channel requests sent by this server, until reply, timeout or close.',
      labelNames: ['server_app', 'transport', 'outcome'], registers,
      buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05, 0.25, 1, 5] });

    const traffic = (): Record<Transport, Traffic> => {
      const sum = { shm: { ...this.retired.shm }, mq: { ...this.retired.mq }, socket: { ...this.retired.socket } };
      for (const s of target.openSessions) {
        for (const c of s.channels) {
          const t = sum[c.transport];
          t.messagesIn += c.counters.messagesIn;
          t.messagesOut += c.counters.messagesOut;
          t.bytesIn += c.counters.bytesIn;
          t.bytesOut += c.counters.bytesOut;
        }
      }
      return sum;
    };
    const trafficCounter = (name: string, help: string, field: 'messages' | 'bytes') => new Counter({
      name, help, labelNames: ['server_app', 'transport', 'direction'], registers,
      collect() {
        this.reset();
        for (const [t, v] of Object.entries(traffic())) {
          this.inc({ ...app, transport: t, direction: 'in' }, field === 'messages' ? v.messagesIn : v.bytesIn);
          this.inc({ ...app, transport: t, direction: 'out' }, field === 'messages' ? v.messagesOut : v.bytesOut);
        }
      },
    });
    trafficCounter('shmx_channel_messages_total', 'Channel messages of this server, by transport and direction.', 'messages');
    trafficCounter('shmx_channel_bytes_total', 'Channel bytes (with the 8-byte envelope) of this server, by transport and direction.', 'bytes');
    new Gauge({ name: 'shmx_channels_open', help: 'Channels open now, by transport.', labelNames: ['server_app', 'transport'], registers,
      collect() {
        const n: Record<Transport, number> = { shm: 0, mq: 0, socket: 0 };
        for (const s of target.openSessions) for (const c of s.channels) n[c.transport]++;
        for (const t of TRANSPORTS) this.set({ ...app, transport: t }, n[t]);
      } });

    const arenaBytes = (which: 'reservedBytes' | 'inUseBytes') => function (this: Gauge) {
      this.reset();
      let session = 0;
      for (const s of target.openSessions) {
        try {
          session += s.inspect().sessionArena.stats()[which];
        } catch {
          // closing under our feet: counted at the next scrape, or gone
        }
      }
      this.set({ ...app, scope: 'session' }, session);
      let appScope = 0;
      for (const arena of target.inspect().appArenas.values()) {
        try {
          appScope += arena.stats()[which];
        } catch {
          // the server is closing
        }
      }
      this.set({ ...app, scope: 'app' }, appScope);
    };
    new Gauge({ name: 'shmx_arena_reserved_bytes', help: 'Bytes reserved by this server\'s arenas, by scope.', labelNames: ['server_app', 'scope'], registers,
      collect: arenaBytes('reservedBytes') });
    new Gauge({ name: 'shmx_arena_used_bytes', help: 'Bytes in live blocks of this server\'s arenas, by scope.', labelNames: ['server_app', 'scope'], registers,
      collect: arenaBytes('inUseBytes') });

    const sweeps = new Counter({ name: 'shmx_sweeps_total', help: 'Sweeps of this server app\'s stale objects (not dry runs).', labelNames: ['server_app'], registers });
    const swept = new Counter({ name: 'shmx_swept_objects_total', help: 'Stale objects removed by those sweeps.', labelNames: ['server_app'], registers });
    sweeps.inc(app, 0);
    swept.inc(app, 0);

    const metrics = this;
    new Gauge({ name: 'shmx_control_connections', help: 'Control socket connections open now.', labelNames: ['server_app'], registers,
      collect() { this.set(app, metrics.control?.stat('connections') ?? 0); } });
    new Counter({ name: 'shmx_control_responses_total', help: 'Control socket responses, by outcome.', labelNames: ['server_app', 'outcome'], registers,
      collect() {
        this.reset();
        const c = metrics.control;
        this.inc({ ...app, outcome: 'ok' }, c === undefined ? 0 : c.stat('responses') - c.stat('errorResponses'));
        this.inc({ ...app, outcome: 'error' }, c?.stat('errorResponses') ?? 0);
      } });

    this.subscribe(DIAGNOSTICS_CHANNELS.sessionOpen, (m: DiagnosticsSessionOpen) => {
      if (mine(m) && m.handshakeMs !== undefined) handshake.observe(app, m.handshakeMs / 1000);
    });
    this.subscribe(DIAGNOSTICS_CHANNELS.sessionFault, (m: DiagnosticsSessionFault) => {
      if (mine(m) && hasQuotaCode(m.error)) quotaFaults++;
    });
    this.subscribe(DIAGNOSTICS_CHANNELS.channelClose, (m: DiagnosticsChannelEvent) => {
      if (!mine(m) || m.counters === undefined) return;
      const t = this.retired[m.transport];
      t.messagesIn += m.counters.messagesIn;
      t.messagesOut += m.counters.messagesOut;
      t.bytesIn += m.counters.bytesIn;
      t.bytesOut += m.counters.bytesOut;
    });
    this.subscribe(DIAGNOSTICS_CHANNELS.request, (m: DiagnosticsRequest) => {
      if (mine(m)) requests.observe({ ...app, transport: m.transport, outcome: m.ok ? 'ok' : 'error' }, m.durationMs / 1000);
    });
    this.subscribe(DIAGNOSTICS_CHANNELS.sweep, (m: DiagnosticsSweep) => {
      if (m.serverApp !== target.serverApp || m.dryRun) return;
      sweeps.inc(app);
      swept.inc(app, m.removed);
    });
  }

  private subscribe<T>(name: string, fn: (message: T) => void): void {
    const listener = (message: unknown) => fn(message as T);
    diagnostics.subscribe(name, listener);
    this.subscriptions.push([name, listener]);
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  async text(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  close(): void {
    for (const [name, listener] of this.subscriptions.splice(0)) diagnostics.unsubscribe(name, listener);
  }
}

/** An error, or one in its cause chain, with code EQUOTA. */
function hasQuotaCode(err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (hasCode(e, 'EQUOTA')) return true;
  }
  return false;
}

/**
 * Makes a server's shmx metrics part of your own prom-client registry (what `collectDefaultMetrics` does for
 * process metrics): every `shmx_*` series of `server` then appears in `registry.metrics()`. Equivalent:
 * `Registry.merge([yourRegistry, server.metricsRegistry])`.
 */
export function registerShmxMetrics(registry: Registry, server: { metricsRegistry: Registry | undefined }): void {
  if (server.metricsRegistry === undefined) throw new RangeError('this server was started with metrics: false');
  for (const metric of server.metricsRegistry.getMetricsAsArray()) registry.registerMetric(metric as never);
}
