/**
 * The master-channel wire format. Every frame: a fixed 8-byte header [u32 payload length LE][u8 type]
 * [3 reserved zero bytes] and the payload. Control payloads are JSON; every field is validated on arrival.
 */
import { ShmxError } from '../errors.js';

/**
 * 2: WELCOME and READY carry each side's wake-up facts (before: a channel-level HELLO after READY).
 * 3: HELLO and WELCOME carry each side's `maxSocketMessage`; a side sends inline up to the smaller of the two.
 * 4: an mq channel's queue message carries one or more records, each with its body length (channel/mq-wire.ts).
 */
export const PROTOCOL_VERSION = 4;
export const HEADER_BYTES = 8;
/** Largest frame accepted while handshaking: HELLO/WELCOME are a few hundred bytes. */
export const HANDSHAKE_MAX_PAYLOAD = 4096;
/** Largest control frame once open. */
export const CONTROL_MAX_PAYLOAD = 64 * 1024;

export const FrameType = {
  Hello: 1,
  Welcome: 2,
  Refuse: 3,
  Ready: 4,
  Ping: 5,
  Close: 6,
  /** Channel control frames (the channel layer owns their payload format); small, like all control frames. */
  Channel: 16,
  /** Channel bulk frames (socket-transport messages); up to the channel settings' `maxSocketMessage`. */
  ChannelData: 17,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
const TYPES: ReadonlySet<number> = new Set(Object.values(FrameType));

/** The 8-byte header of a frame whose payload is `length` bytes. */
export function encodeFrameHeader(type: FrameType, length: number): Buffer {
  const head = Buffer.allocUnsafe(HEADER_BYTES);
  head.writeUInt32LE(length, 0);
  head.writeUInt32LE(type, 4);
  return head;
}

/** Builds one frame from consecutive parts whose lengths add up to `length`. */
export function joinFrame(type: FrameType, parts: readonly Uint8Array[], length: number): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
  frame.writeUInt32LE(length, 0);
  frame.writeUInt32LE(type, 4);
  let at = HEADER_BYTES;
  for (const p of parts) {
    frame.set(p, at);
    at += p.byteLength;
  }
  return frame;
}

/** Builds one frame. */
export function encodeFrame(type: FrameType, payload?: Uint8Array): Buffer {
  const head = encodeFrameHeader(type, payload?.byteLength ?? 0);
  return payload === undefined ? head : Buffer.concat([head, payload]);
}

/** Builds a frame with a JSON payload. */
export function encodeJsonFrame(type: FrameType, value: unknown): Buffer {
  return encodeFrame(type, Buffer.from(JSON.stringify(value)));
}

/** A protocol violation by the peer: it faults that connection or session only. */
export function protocolError(message: string): ShmxError {
  return new ShmxError('EPROTO', `protocol error: ${message}`);
}

/** Frames up to this size get their buffer as soon as their header arrives (see {@link FrameReader}). */
export const EAGER_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * Splits a byte stream into frames. Rejects unknown types, non-zero reserved bytes and payloads over the
 * limit of their type before buffering them, so a hostile peer cannot make us allocate without bound.
 *
 * A frame that lies whole in one chunk is handed out as a view of it. One that spans chunks gets a buffer of its
 * exact size, and each chunk is copied into it as it comes, while it is hot in the cache: one copy per byte
 * (gathering the chunks and joining them at the end cost a second pass over cold memory — for a 1 GiB
 * socket-channel message, a second gigabyte too). A frame of up to {@link EAGER_FRAME_BYTES} gets its buffer when
 * its header arrives; a larger one once a quarter of it has: a header alone, a few bytes from a hostile peer,
 * must not make us reserve a gigabyte (address space, and external memory that drives V8's collector) — so we
 * never hold more than four times what the peer has really sent, at the price of copying that quarter twice.
 */
export class FrameReader {
  /** A header split across chunks: its first `headBytes` bytes. */
  private readonly head = Buffer.alloc(HEADER_BYTES);
  private headBytes = 0;
  /** The frame being assembled, filled up to `filled`. */
  private body: Buffer | undefined;
  private bodyType: FrameType = FrameType.Ping;
  private filled = 0;
  /** A large frame whose buffer is not made yet: its length, and the parts received so far. */
  private gathering = 0;
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  /** Limit for bulk frames (ChannelData); 0 while handshaking, when they are not allowed. */
  maxBulkPayload = 0;

  constructor(public maxPayload: number) {}

  /** Feeds bytes; returns the complete frames. Throws EPROTO on a malformed header. */
  push(chunk: Buffer): Array<{ type: FrameType; payload: Buffer }> {
    const frames: Array<{ type: FrameType; payload: Buffer }> = [];
    const end = chunk.length;
    let at = 0;
    while (at < end) {
      if (this.gathering > 0) {
        const n = Math.min(end - at, this.gathering - this.gatheredBytes);
        this.gathered.push(chunk.subarray(at, at + n));
        this.gatheredBytes += n;
        at += n;
        if (this.gatheredBytes * 4 < this.gathering) break;
        this.body = Buffer.allocUnsafe(this.gathering);
        for (const part of this.gathered) this.filled += part.copy(this.body, this.filled);
        this.gathering = 0;
        this.gathered = [];
        this.gatheredBytes = 0;
      }
      const body = this.body;
      if (body !== undefined) {
        const n = chunk.copy(body, this.filled, at, Math.min(end, at + body.length - this.filled));
        this.filled += n;
        at += n;
        if (this.filled < body.length) break;
        frames.push({ type: this.bodyType, payload: body });
        this.body = undefined;
        this.filled = 0;
        continue;
      }
      let head = chunk;
      let headAt = at;
      if (this.headBytes > 0 || end - at < HEADER_BYTES) {
        const n = chunk.copy(this.head, this.headBytes, at, Math.min(end, at + HEADER_BYTES - this.headBytes));
        this.headBytes += n;
        at += n;
        if (this.headBytes < HEADER_BYTES) break;
        this.headBytes = 0;
        head = this.head;
        headAt = 0;
      } else {
        at += HEADER_BYTES;
      }
      const length = head.readUInt32LE(headAt);
      const type = head[headAt + 4]!;
      if (!TYPES.has(type) || head[headAt + 5] !== 0 || head[headAt + 6] !== 0 || head[headAt + 7] !== 0) {
        throw protocolError(`bad frame header (type ${type})`);
      }
      const limit = type === FrameType.ChannelData ? this.maxBulkPayload : this.maxPayload;
      if (length > limit) throw protocolError(`frame of type ${type} and ${length} bytes exceeds ${limit}`);
      if (end - at >= length) {
        frames.push({ type: type as FrameType, payload: chunk.subarray(at, at + length) });
        at += length;
      } else {
        this.bodyType = type as FrameType;
        if (length <= EAGER_FRAME_BYTES) this.body = Buffer.allocUnsafe(length);
        else this.gathering = length;
      }
    }
    return frames;
  }
}

/** Parses a JSON payload into an object, or throws EPROTO. */
export function parseJsonPayload(payload: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw protocolError(`${what} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw protocolError(`${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Field readers for parsed payloads: each throws EPROTO when the field is missing or of the wrong shape. */
export const field = {
  string(o: Record<string, unknown>, key: string, max = 256): string {
    const v = o[key];
    if (typeof v !== 'string' || v.length === 0 || v.length > max) throw protocolError(`field '${key}' must be a string`);
    return v;
  },
  /** A JSON object whose content another layer checks. */
  object(o: Record<string, unknown>, key: string): Record<string, unknown> {
    const v = o[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw protocolError(`field '${key}' must be an object`);
    return v as Record<string, unknown>;
  },
  integer(o: Record<string, unknown>, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw protocolError(`field '${key}' must be an integer in [${min}, ${max}]`);
    }
    return v;
  },
};

/** Client → server: who is asking. */
export interface Hello {
  protocol: number;
  serverApp: string;
  clientApp: string;
  pid: number;
  startTime: number;
  /** The client's channels.maxSocketMessage: the largest socket-channel message it accepts (0 from a client of
   *  another protocol version, which is refused for that). */
  maxSocketMessage: number;
}

/** Server → client: the session's id and the names of its shared objects. */
export interface Welcome {
  session: number;
  serverPid: number;
  serverStartTime: number;
  sessionArena: string;
  appArena: string;
  keepAliveIntervalMs: number;
  keepAliveTimeoutMs: number;
  /** Channels each side may open (quotas.channelsPerSession): the client checks its opens against it. */
  maxChannels: number;
  /** The server's wake-up facts: opaque here, checked by the channel layer (Wakeup.meetPeer). */
  wakeup: unknown;
  /** The server's channels.maxSocketMessage: the largest socket-channel message it accepts. */
  maxSocketMessage: number;
}

/** Client → server: the client has opened the session's objects; its wake-up facts (opaque here). */
export interface Ready {
  wakeup: unknown;
}

/** Server → client: why the session was not opened. */
export interface Refusal {
  code: string;
  reason: string;
}

export function parseHello(payload: Buffer): Hello {
  const o = parseJsonPayload(payload, 'HELLO');
  return {
    protocol: field.integer(o, 'protocol', 0, 1_000_000),
    serverApp: field.string(o, 'serverApp', 32),
    clientApp: field.string(o, 'clientApp', 32),
    pid: field.integer(o, 'pid', 1, 4_194_304),
    startTime: field.integer(o, 'startTime'),
    // Checked only in the version that has it: another version is refused for its version, not for this field.
    maxSocketMessage: o.protocol === PROTOCOL_VERSION ? field.integer(o, 'maxSocketMessage', 4096, 2 ** 31) : 0,
  };
}

export function parseWelcome(payload: Buffer): Welcome {
  const o = parseJsonPayload(payload, 'WELCOME');
  return {
    session: field.integer(o, 'session'),
    serverPid: field.integer(o, 'serverPid', 1, 4_194_304),
    serverStartTime: field.integer(o, 'serverStartTime'),
    sessionArena: field.string(o, 'sessionArena', 200),
    appArena: field.string(o, 'appArena', 200),
    keepAliveIntervalMs: field.integer(o, 'keepAliveIntervalMs', 1, 3_600_000),
    keepAliveTimeoutMs: field.integer(o, 'keepAliveTimeoutMs', 1, 3_600_000),
    wakeup: field.object(o, 'wakeup'),
    maxChannels: field.integer(o, 'maxChannels', 1, Number.MAX_SAFE_INTEGER),
    maxSocketMessage: field.integer(o, 'maxSocketMessage', 4096, 2 ** 31),
  };
}

export function parseReady(payload: Buffer): Ready {
  const o = parseJsonPayload(payload, 'READY');
  return { wakeup: field.object(o, 'wakeup') };
}

export function parseRefusal(payload: Buffer): Refusal {
  const o = parseJsonPayload(payload, 'REFUSE');
  return { code: field.string(o, 'code', 64), reason: field.string(o, 'reason', 1024) };
}
