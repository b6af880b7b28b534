/**
 * diagnostics_channel events: what shmx publishes so that APM tools (and shmx's own Prometheus metrics) can
 * trace sessions, channels, faults and sweeps without shmx knowing who listens. A leaf module: every layer may
 * publish here. Publishing costs one `hasSubscribers` check when nobody subscribes — callers test it before
 * they build a message.
 *
 * Subscribe with `diagnostics_channel.subscribe('shmx:session:open', (msg) => …)`; the names and message shapes
 * are the exported `DIAGNOSTICS_CHANNELS` and `Diagnostics*` types (docs/operations.md lists them).
 */
import diagnostics from 'node:diagnostics_channel';

/** Names of every channel shmx publishes on. */
export const DIAGNOSTICS_CHANNELS = {
  sessionOpen: 'shmx:session:open',
  sessionClose: 'shmx:session:close',
  sessionFault: 'shmx:session:fault',
  channelOpen: 'shmx:channel:open',
  channelClose: 'shmx:channel:close',
  request: 'shmx:channel:request',
  sweep: 'shmx:sweep',
} as const;

/** Who a session is, in every session and channel message. */
export interface DiagnosticsSessionRef {
  /** `<serverApp>.<serverPid>.<number>` */
  sessionId: string;
  serverApp: string;
  /** Which side published: the server's or the client's Session object. */
  side: 'server' | 'client';
}

/** `shmx:session:open` — a Session object exists (both sides). */
export interface DiagnosticsSessionOpen extends DiagnosticsSessionRef {
  peer: { app: string; pid: number; uid: number; gid: number };
  /** Server side: accept → READY, in ms. */
  handshakeMs?: number;
}

/** `shmx:session:close` — after its `close` event. */
export interface DiagnosticsSessionClose extends DiagnosticsSessionRef {
  reason: string;
  /** How long it was open, in ms. */
  durationMs: number;
}

/** `shmx:session:fault` — the session was hosed (peer gone, protocol error, keep-alive timeout). */
export interface DiagnosticsSessionFault extends DiagnosticsSessionRef {
  reason: string;
  error: Error;
}

/** `shmx:channel:open` / `shmx:channel:close`. */
export interface DiagnosticsChannelEvent extends DiagnosticsSessionRef {
  channelId: number;
  transport: 'shm' | 'mq' | 'socket';
  /** close only */
  reason?: string;
  /** close only: the channel's final counters. */
  counters?: { messagesIn: number; messagesOut: number; bytesIn: number; bytesOut: number };
}

/** `shmx:channel:request` — a request on a channel completed (reply, timeout, abort or close). */
export interface DiagnosticsRequest extends DiagnosticsSessionRef {
  channelId: number;
  transport: 'shm' | 'mq' | 'socket';
  durationMs: number;
  ok: boolean;
}

/** `shmx:sweep` — a sweep of stale objects ran (or a dry run). */
export interface DiagnosticsSweep {
  serverApp: string | undefined;
  dryRun: boolean;
  removed: number;
  failed: number;
  kept: number;
}

/** The channel objects, made once (diagnostics_channel keeps them by name anyway). */
export const diag = {
  sessionOpen: diagnostics.channel(DIAGNOSTICS_CHANNELS.sessionOpen),
  sessionClose: diagnostics.channel(DIAGNOSTICS_CHANNELS.sessionClose),
  sessionFault: diagnostics.channel(DIAGNOSTICS_CHANNELS.sessionFault),
  channelOpen: diagnostics.channel(DIAGNOSTICS_CHANNELS.channelOpen),
  channelClose: diagnostics.channel(DIAGNOSTICS_CHANNELS.channelClose),
  request: diagnostics.channel(DIAGNOSTICS_CHANNELS.request),
  sweep: diagnostics.channel(DIAGNOSTICS_CHANNELS.sweep),
};
