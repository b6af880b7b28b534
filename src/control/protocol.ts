/**
 * The control socket's wire format: one JSON object per line (UTF-8, `\n`-terminated) in each direction.
 *
 *   request   {"id": 7, "command": "session", "args": {"session": "pricing.4833.1"}}
 *   success   {"id": 7, "result": {...}}
 *   failure   {"id": 7, "error": {"code": "ENOSESSION", "message": "..."}}
 *
 * `id` is a string (≤ 128 characters) or a safe integer chosen by the client; responses echo it and may come in
 * any order. A line that cannot be tied to a request (not JSON, no usable id, too long) is answered with
 * `"id": null`. Parsing never throws: everything a client sends becomes a request or an error response.
 */

/** Longest request line accepted (bytes, without the newline). Longer lines are answered ETOOLARGE. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Longest id string. */
const MAX_ID_CHARS = 128;
/** Deepest nesting of arrays and objects in a request. V8 parses a 30 000-deep array in ~50 ms: checked first. */
export const MAX_REQUEST_DEPTH = 32;

/** Commands the control socket understands. */
export const CONTROL_COMMANDS = ['status', 'sessions', 'session', 'arenas', 'resources', 'close', 'sweep', 'metrics'] as const;
/** One command of the control socket. */
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

/** Error codes of control responses. */
export type ControlErrorCode =
  /** The line is not valid JSON. */
  | 'EPARSE'
  /** Valid JSON, but not a request: not an object, bad id, missing or mistyped fields. */
  | 'EBADREQUEST'
  /** The line is longer than MAX_REQUEST_BYTES. */
  | 'ETOOLARGE'
  | 'EUNKNOWNCOMMAND'
  /** No open session with that id. */
  | 'ENOSESSION'
  /** A command that changes something, from a user other than the server's (or root). */
  | 'EPERM'
  /** Too many requests of this connection in flight at once. */
  | 'EBUSY'
  /** Too many control connections: sent once, then the connection ends. */
  | 'ETOOMANYCONNECTIONS'
  /** Sent before the server ends a connection: idle too long, or too many errors. */
  | 'ETIMEDOUT'
  | 'ECUTOFF'
  /** The command failed inside the server. */
  | 'EINTERNAL';

/** The id a request carries and its response echoes. */
export type RequestId = string | number;

/** A request on the control socket: one JSON line. */
export interface ControlRequest {
  id: RequestId;
  command: ControlCommand;
  args: Record<string, unknown>;
}

/** The error of a failed request. */
export interface ControlError {
  code: ControlErrorCode | string;
  message: string;
}

/** The answer to a request: its result, or an error. */
export type ControlResponse =
  | { id: RequestId | null; result: unknown; error?: undefined }
  | { id: RequestId | null; error: ControlError; result?: undefined };

/** A request, or the error response to send instead. */
export type Parsed = { request: ControlRequest } | { error: ControlResponse };

function fail(id: RequestId | null, code: ControlErrorCode, message: string): { error: ControlResponse } {
  return { error: { id, error: { code, message } } };
}

function validId(id: unknown): id is RequestId {
  return (typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_CHARS) || Number.isSafeInteger(id);
}

/** Parses one request line (without its newline). Never throws. */
export function parseRequest(line: string): Parsed {
  if (nestingDepth(line, MAX_REQUEST_DEPTH) > MAX_REQUEST_DEPTH) {
    return fail(null, 'EBADREQUEST', `nested deeper than ${MAX_REQUEST_DEPTH} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return fail(null, 'EPARSE', `not JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(null, 'EBADREQUEST', 'a request is a JSON object');
  }
  const { id, command, args } = value as Record<string, unknown>;
  if (!validId(id)) return fail(null, 'EBADREQUEST', `id must be a safe integer or a string of 1..${MAX_ID_CHARS} characters`);
  if (typeof command !== 'string') return fail(id, 'EBADREQUEST', 'command must be a string');
  if (!(CONTROL_COMMANDS as readonly string[]).includes(command)) {
    return fail(id, 'EUNKNOWNCOMMAND', `unknown command '${command.slice(0, 64)}'; known: ${CONTROL_COMMANDS.join(', ')}`);
  }
  if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
    return fail(id, 'EBADREQUEST', 'args must be an object');
  }
  return { request: { id, command: command as ControlCommand, args: (args ?? {}) as Record<string, unknown> } };
}

/**
 * How deep `[` and `{` nest in `text` outside strings, counting until it exceeds `limit` (then it stops). A cheap
 * linear scan; it does not validate the JSON — JSON.parse does that after.
 */
function nestingDepth(text: string, limit: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return depth;
}

/** One response as a line. */
export function encodeResponse(response: ControlResponse): string {
  return `${JSON.stringify(response)}\n`;
}

/** One request as a line (client side). */
export function encodeRequest(id: RequestId, command: ControlCommand, args?: Record<string, unknown>): string {
  return `${JSON.stringify(args === undefined ? { id, command } : { id, command, args })}\n`;
}

/**
 * Splits a byte stream into lines, bounded: a line over `maxBytes` is reported once as too long and its bytes
 * are skipped up to the next newline, so a client can never make us buffer more than `maxBytes`.
 */
export class LineReader {
  private parts: Buffer[] = [];
  private buffered = 0;
  private skipping = false;

  constructor(private readonly maxBytes: number) {}

  /** Feeds a chunk; returns complete lines, and `null` for each line that was too long. */
  push(chunk: Buffer): Array<string | null> {
    const out: Array<string | null> = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.skipping) {
        if (this.buffered + (end - start) > this.maxBytes) {
          this.parts = [];
          this.buffered = 0;
          this.skipping = true;
          out.push(null);
        } else if (end > start) {
          this.parts.push(chunk.subarray(start, end));
          this.buffered += end - start;
        }
      }
      if (nl < 0) break;
      if (!this.skipping) out.push(Buffer.concat(this.parts, this.buffered).toString('utf8'));
      this.parts = [];
      this.buffered = 0;
      this.skipping = false;
      start = nl + 1;
    }
    return out;
  }
}

/** Where a server app's control socket is: beside its master socket `<app>.sock` (app names have no dots). */
export function controlSocketPath(runDirectory: string, serverApp: string): string {
  return `${runDirectory.replace(/\/+$/, '')}/${serverApp}.ctl`;
}
