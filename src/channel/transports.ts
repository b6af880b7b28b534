/**
 * Making a channel's transport, on either side of an open: the one place that knows the three kinds. The opener
 * makes its transport and says in the OPEN how the accepter finds it (a lent ring pair, two queue names, or
 * nothing for the socket); the accepter makes its end from those facts, checking them first.
 */
import type { Block, Handle } from '../arena/index.js';
import { createWithFreshNonce, parseResourceName } from '../cleanup/names.js';
import { ShmxError } from '../errors.js';
import type { ChannelHost } from './host.js';
import { MqTransport, queueNames, type MqChannelOptions } from './mq-transport.js';
import { formatRingPair, ringPairBytes, ShmTransport } from './shm-transport.js';
import type { SocketChannels } from './socket-wire.js';
import type { Transport, TransportKind } from './transport.js';
import type { Wakeup } from './wakeup.js';

/** What making a transport needs from the multiplexer. */
export interface TransportDeps {
  host: ChannelHost;
  wakeup: Wakeup;
  sockets: SocketChannels;
  /** mq: the queue became readable or writable — run the delivery loop. */
  onQueueEvent: () => void;
}

/** What the opener needs to open one channel. */
export interface OpenerSpec {
  kind: TransportKind;
  /** shm: bytes per direction. */
  capacity: number;
  mq: MqChannelOptions;
}

/** The opener's transport and the facts that go into the OPEN frame. */
export interface Opened {
  transport: Transport;
  /** Fields of the OPEN body that let the accepter find its end. */
  fields: Record<string, unknown>;
  /** shm: the ring pair's lend (taken back if the peer never borrows it). */
  lent?: Handle;
}

/** The opener makes the transport of channel `id`. Throws (nothing left behind) when it cannot. */
export function openTransport(deps: TransportDeps, id: number, spec: OpenerSpec): Opened {
  const { host, wakeup } = deps;
  switch (spec.kind) {
    case 'shm': {
      const arena = host.sessionArenaForChannels;
      const block = arena.alloc(ringPairBytes(spec.capacity), { align: 64 });
      let transport: ShmTransport | undefined;
      try {
        formatRingPair(block, spec.capacity);
        transport = new ShmTransport(block, true, wakeup);
        const lent = arena.lend(block);
        return { transport, fields: { ring: lent }, lent };
      } catch (err) {
        transport?.close();
        if (block.held) block.release();
        throw err;
      }
    }
    case 'mq': {
      // Each channel's queues get a fresh nonce, and another on EEXIST: a name taken first never blocks us.
      let names: [string, string] = ['', ''];
      const transport = createWithFreshNonce(`queues of channel ${id}`, (nonce) => {
        names = queueNames(`${host.localScopePrefix}${nonce}.`, id);
        return MqTransport.create(host.serverApp, names, spec.mq, host.objectMode, deps.onQueueEvent, deps.onQueueEvent);
      });
      return { transport, fields: { queues: names } };
    }
    case 'socket':
      return { transport: deps.sockets.create(id), fields: {} };
  }
}

/** The accepter's end, or why this one channel is refused (our resources, not the peer's fault). */
export type Accepted = { transport: Transport } | { refused: Error & { code?: string } };

/**
 * The accepter makes its end of channel `id` from the OPEN body. Throws EPROTO (the session faults) when the
 * peer's facts are malformed or point outside this session.
 */
export function acceptTransport(deps: TransportDeps, id: number, open: Record<string, unknown>): Accepted {
  const { host, wakeup } = deps;
  switch (open.transport) {
    case 'shm': {
      // borrow() validates the handle's shape and every field against the arena.
      const block: Block = host.sessionArenaForChannels.borrow(open.ring as Handle);
      try {
        return { transport: new ShmTransport(block, false, wakeup) };
      } catch (err) {
        block.release();
        throw err;
      }
    }
    case 'mq': {
      const names = open.queues;
      if (!Array.isArray(names) || names.length !== 2 || !names.every((n) => isPeerQueue(host, n))) {
        throw new ShmxError('EPROTO', `channel ${id}: queue names outside this session`);
      }
      try {
        return { transport: MqTransport.open(names as [string, string], deps.onQueueEvent, deps.onQueueEvent) };
      } catch (err) {
        return { refused: err as Error & { code?: string } };
      }
    }
    case 'socket':
      return { transport: deps.sockets.create(id) };
    default:
      throw new ShmxError('EPROTO', `channel ${id}: unknown transport`);
  }
}

function isPeerQueue(host: ChannelHost, name: unknown): boolean {
  if (typeof name !== 'string') return false;
  // Exactly this session's objects made by the peer process: nothing else may be opened on its word.
  return name.startsWith(host.peerScopePrefix) && parseResourceName(name) !== null;
}
