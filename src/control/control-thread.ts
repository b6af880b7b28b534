/**
 * The control thread: a worker_threads Worker that owns the control socket — accepting, reading, framing,
 * size and depth checks, parsing, timeouts, the error policy, the busy budget — so that nothing a control
 * client sends runs on the sessions' event loop. Only well-formed requests cross to the server's thread, and
 * only their answers (already lines of text) come back. Started by ControlServer (control-server.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ControlLimits } from './control-limits.js';
import { ControlListener } from './control-listener.js';
import { ControlStats } from './control-stats.js';
import type { FromControlThread, ToControlThread } from './control-messages.js';

const { path, limits, stats } = workerData as { path: string; limits: ControlLimits; stats: SharedArrayBuffer };
const port = parentPort!;
const post = (message: FromControlThread) => port.postMessage(message);

try {
  const listener = await ControlListener.listen(path, limits, new ControlStats(stats), {
    request: (connection, request, caller) => post({ type: 'request', connection, request, caller }),
    log: (level, fields, message) => post({ type: 'log', level, fields, message }),
  });
  port.on('message', (message: ToControlThread) => {
    if (message.type === 'response') listener.respond(message.connection, message.line, message.isError, message.costMs);
    else void listener.close().then(() => post({ type: 'closed' }));
  });
  post({ type: 'listening' });
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  post({ type: 'failed', error: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall } });
}
