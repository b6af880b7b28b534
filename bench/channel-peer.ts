/**
 * The far side of bench/channels.ts, in its own process: a shmx server whose channels echo (copies are echoed
 * as copies, blocks by handle) or count, a `net` echo server on a Unix socket, and an IPC echo.
 */
import net from 'node:net';
import { SessionServer, Universe, type Message } from '../dist/index.js';

const { definition, serverApp, netPath, spinMicros } = JSON.parse(process.argv[2]!) as {
  spinMicros?: number;
  definition: ConstructorParameters<typeof Universe>[0];
  serverApp: string;
  netPath: string;
};

const server = await SessionServer.start({
  universe: new Universe(definition),
  serverApp,
  sessionArena: { maxBytes: 6 * 2 ** 30, initialBytes: 64 << 20 },
  keepAlive: { intervalMs: 1000, timeoutMs: 120_000 },
  channels: spinMicros === undefined ? undefined : { spinMicros },
});
server.on('session', (session) => {
  session.on('channel', (channel) => {
    const { mode, spin, views } = channel.metadata as { mode: string; spin?: boolean; views?: boolean };
    if (views === true) channel.setMessageViews(true); // the receiver's choice: no copy-out per message
    // Spinning is each side's own choice: the bench asks for it in the metadata of its spin channel.
    if (spin === true) channel.setSpin(true);
    if (mode === 'count') {
      let count = 0;
      channel.on('message', (m: Message) => {
        if (m.isRequest) void m.replyAsync(Buffer.from(String(count)));
        else count++;
      });
      return;
    }
    channel.on('message', (m: Message) => {
      const echo = m.block ?? m.bytes;
      void (m.isRequest ? m.replyAsync(echo) : channel.sendAsync(echo)).catch(() => {});
      m.release();
    });
  });
});

// net: echo every byte; count mode after a 'C' first byte: acknowledge when the announced total arrived.
const echo = net.createServer((socket) => {
  let counting = -1;
  let seen = 0;
  socket.on('data', (chunk: Buffer) => {
    if (counting < 0 && seen === 0 && chunk[0] === 0x43 /* C */) {
      counting = chunk.readUInt32LE(1);
      chunk = chunk.subarray(5);
    }
    if (counting >= 0) {
      seen += chunk.length;
      if (seen >= counting) {
        socket.write(Buffer.from([1]));
        counting = -1;
        seen = 0;
      }
      return;
    }
    socket.write(chunk);
  });
});
await new Promise<void>((resolve) => echo.listen(netPath, resolve));

// child_process IPC (advanced serialisation carries Buffers as binary).
process.on('message', (m: unknown) => process.send!(m));
process.send!('ready');
process.once('SIGTERM', () => void server.close().then(() => echo.close(() => process.exit(0))));
