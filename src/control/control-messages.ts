/**
 * What the server's thread and the control thread say to each other (structured-clone messages on the Worker's
 * port).
 */
import type { ControlCaller } from './control-listener.js';
import type { ControlRequest } from './protocol.js';

/** From the control thread. */
export type FromControlThread =
  | { type: 'listening' }
  | { type: 'failed'; error: { message: string; code?: string; errno?: number; syscall?: string } }
  | { type: 'request'; connection: number; request: ControlRequest; caller: ControlCaller }
  | { type: 'log'; level: 'info' | 'warn'; fields: Record<string, unknown>; message: string }
  | { type: 'closed' };

/** To the control thread. */
export type ToControlThread =
  | { type: 'response'; connection: number; line: string; isError: boolean; costMs: number }
  | { type: 'close' };
