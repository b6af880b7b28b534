/**
 * shmx — zero-copy shared-memory sessions for Node.js on Linux.
 *
 * Start here: {@link SessionServer} and {@link ClientSession} open sessions between two processes described by
 * one {@link Universe}; each {@link Session} gives both sides a session-scope and an app-scope {@link Arena}.
 */
export * from './session/index.js';
export { Channel, Message, WorkerChannel, WorkerMessage } from './channel/index.js';
export type {
  OpenChannelOptions, ChannelSettings, RequestOptions, SendOptions, TransportKind, MqChannelOptions, ChannelEvents, WorkerChannelEvents,
  BridgeArenas,
} from './channel/index.js';
export type { AbortOptions } from './abort.js';
export type { NativeError } from './native.js';
export { Arena, Block, encodeHandle, decodeHandle, HANDLE_BYTES } from './arena/index.js';
export type { Handle, ArenaGrowth, ArenaStats, ArenaCreateOptions, ArenaOpenOptions, AllocOptions, LeakInfo } from './arena/index.js';
export { ShmxError, TimeoutError, AbortError, QuotaError, hasCode } from './errors.js';
export type { ShmxCode, ShmxErrorCode, ErrnoCode } from './errors.js';
export { sweepStale, listResources, parseResourceName, formatResourceName } from './cleanup/index.js';
export type { SweepOptions, SweepReport, FoundResource, ResourceName, ResourceKind } from './cleanup/index.js';
export type { Logger } from './log.js';
export { ControlClient, controlSocketPath, CONTROL_COMMANDS, MAX_REQUEST_BYTES, registerShmxMetrics } from './control/index.js';
export type {
  ControlCommand, ControlErrorCode, ControlRequest, ControlResponse, ControlError, RequestId, ControlLimits, ControlSocketOptions,
  ControlConnectionCounters, OperationsOptions,
} from './control/index.js';
export { DIAGNOSTICS_CHANNELS } from './diagnostics.js';
export type {
  DiagnosticsSessionRef, DiagnosticsSessionOpen, DiagnosticsSessionClose, DiagnosticsSessionFault, DiagnosticsChannelEvent,
  DiagnosticsRequest, DiagnosticsSweep,
} from './diagnostics.js';
export type { ChannelCounters } from './channel/channel.js';
// ── extras (issue 11 items 6, 7): reconnect and codecs ──────────────────────────────────────────────────────
export { reconnecting, Reconnecting } from './session/reconnect.js';
export type { RetryOptions, RetryInfo, ReconnectingOptions, ReconnectingEvents } from './session/reconnect.js';
export { msgpackCodec, rawCodec, typed, TypedChannel, TypedMessage, LARGE_VALUE_BYTES } from './codec/index.js';
export type { Codec, MsgpackOptions, TypedChannelEvents } from './codec/index.js';
// ── end extras ──────────────────────────────────────────────────────────────────────────────────────────────
