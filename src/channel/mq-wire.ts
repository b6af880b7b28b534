/**
 * What one POSIX message of an mq channel carries: one or more records, each
 * `[u32 tag][u32 request id][u32 body length][body]` (little-endian), back to back. Several records per message
 * let a burst of channel messages (a flood, the replies to a batch of requests) cross the kernel in one mq_send
 * and one mq_receive instead of one each.
 */
import { OWN_BODY_MIN, type RecordVisitor } from './transport.js';

/** Bytes before each record's body. */
export const MQ_RECORD_HEADER = 12;

/** Records put together into one outgoing message, in a buffer of the queue's message size. */
export class MqBatch {
  private length = 0;
  private readonly view: DataView;

  constructor(private readonly buffer: Buffer) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  get isEmpty(): boolean {
    return this.length === 0;
  }

  /** Whether a record with a body of `bodyLength` bytes still fits. */
  fits(bodyLength: number): boolean {
    return this.length + MQ_RECORD_HEADER + bodyLength <= this.buffer.byteLength;
  }

  /** Appends a record (copies `body`); the caller checked {@link fits}. */
  add(tag: number, requestId: number, body: Uint8Array): void {
    const at = this.length;
    this.view.setUint32(at, tag, true);
    this.view.setUint32(at + 4, requestId, true);
    this.view.setUint32(at + 8, body.byteLength, true);
    this.buffer.set(body, at + MQ_RECORD_HEADER);
    this.length = at + MQ_RECORD_HEADER + body.byteLength;
  }

  /** The message as it stands (a view: valid until the next {@link add} or {@link clear}). */
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  clear(): void {
    this.length = 0;
  }

  /** Shows each record of the batch to `visit` (for a batch that will never be sent). */
  visit(visit: RecordVisitor): void {
    if (this.length === 0) return;
    const records = new MqRecords(this.buffer);
    records.reset(this.length);
    records.visitRest(visit);
  }
}

/**
 * The records of one received message, taken one at a time: a reader may stop between two (its delivery limit)
 * and go on at the next read, as long as nothing is received into the buffer meanwhile.
 */
export class MqRecords {
  private at = 0;
  private end = 0;
  /** A message was received and nothing of it was shown yet (so an empty one is shown too, as malformed). */
  private fresh = false;
  private readonly view: DataView;

  constructor(private readonly buffer: Buffer) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  /** A message of `length` bytes was received into the buffer. */
  reset(length: number): void {
    this.at = 0;
    this.end = length;
    this.fresh = true;
  }

  /** Records of the last message not yet shown. */
  get more(): boolean {
    return this.fresh || this.at < this.end;
  }

  /**
   * Shows the next record to `visit`. What cannot be a record — a header cut short, a length running past the
   * message, an empty message; only a broken peer sends one — is shown as one record of tag 0, which no body kind
   * has (the channel rejects it), and ends the message. A body of {@link OWN_BODY_MIN} bytes or more leaves the
   * buffer as a copy of its own, the only one.
   */
  next(visit: RecordVisitor): void {
    this.fresh = false;
    const at = this.at;
    const left = this.end - at;
    const length = left >= MQ_RECORD_HEADER ? this.view.getUint32(at + 8, true) : -1;
    if (length < 0 || length > left - MQ_RECORD_HEADER) {
      this.at = this.end;
      visit(0, 0, this.buffer.subarray(at, at + left));
      return;
    }
    const start = at + MQ_RECORD_HEADER;
    this.at = start + length;
    const tag = this.view.getUint32(at, true);
    const requestId = this.view.getUint32(at + 4, true);
    const body = this.buffer.subarray(start, start + length);
    if (length >= OWN_BODY_MIN) visit(tag, requestId, Buffer.from(body), true);
    else visit(tag, requestId, body);
  }

  /** Shows every record left. */
  visitRest(visit: RecordVisitor): void {
    while (this.more) this.next(visit);
  }
}
