/**
 * FrameWriter (src/session/frame-writer.ts) on a real Unix socket pair: a large frame is handed to the kernel
 * straight from the caller's bytes only when nothing of ours waits in the stream before it — otherwise its
 * bytes would overtake what the stream still holds. Made deterministic by emptying the kernel's buffer with a
 * synchronous read on the receiving descriptor while the sender's stream still holds the rest of a frame.
 */
import { readSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameWriter } from '../../src/session/frame-writer.js';
import { socketFd } from '../../src/session/peer-socket.js';
import { FrameReader, FrameType, joinFrame } from '../../src/session/protocol.js';
import { testRunDirectory } from '../helpers/universe.js';

const closers: Array<() => void> = [];
afterEach(() => closers.splice(0).forEach((c) => c()));

async function socketPair(): Promise<{ sender: Socket; receiver: Socket }> {
  const path = join(testRunDirectory(), 'frame-writer.sock');
  const server = createServer({ pauseOnConnect: true }); // the receiver reads nothing until told
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const sender = connect(path);
  await new Promise((r) => sender.once('connect', r));
  const receiver = await accepted;
  closers.push(() => {
    sender.destroy();
    receiver.destroy();
    server.close();
  });
  return { sender, receiver };
}

const filled = (n: number, v: number) => Buffer.alloc(n, v);

describe('FrameWriter', () => {
  it('never lets a large frame overtake what the stream still holds', async () => {
    const { sender, receiver } = await socketPair();
    const writer = new FrameWriter(sender);
    // A 4 MiB frame written through the stream: the kernel takes a few hundred KiB, the stream keeps the rest.
    sender.write(joinFrame(FrameType.ChannelData, [filled(4 << 20, 1)], 4 << 20));
    expect(sender.writableLength).toBeGreaterThan(0);
    // Empty the kernel's buffer behind the stream's back: now it has room, and the stream has not noticed yet.
    const fd = socketFd(receiver);
    const early: Buffer[] = [];
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      let n = 0;
      try {
        n = readSync(fd, chunk);
      } catch {
        break; // EAGAIN: nothing more in the kernel
      }
      if (n === 0) break;
      early.push(chunk.subarray(0, n));
    }
    expect(early.length).toBeGreaterThan(0);
    // A large frame now must queue behind the stream's rest, though the kernel would take it at once.
    writer.send(FrameType.ChannelData, [filled(256 * 1024, 2)]);
    writer.send(FrameType.Channel, [filled(100, 3)]);
    const reader = new FrameReader(64 * 1024);
    reader.maxBulkPayload = 8 << 20;
    const frames: Array<{ type: number; length: number; fill: number }> = [];
    const take = (chunk: Buffer) => {
      for (const f of reader.push(chunk)) frames.push({ type: f.type, length: f.payload.length, fill: f.payload[0]! });
    };
    early.forEach(take);
    const done = new Promise<void>((resolve, reject) => {
      receiver.on('data', (chunk: Buffer) => {
        try {
          take(chunk); // bytes out of order make a bad header here (EPROTO)
        } catch (err) {
          reject(err as Error);
        }
        if (frames.length === 3) resolve();
      });
    });
    receiver.resume();
    await done;
    expect(frames).toEqual([
      { type: FrameType.ChannelData, length: 4 << 20, fill: 1 },
      { type: FrameType.ChannelData, length: 256 * 1024, fill: 2 },
      { type: FrameType.Channel, length: 100, fill: 3 },
    ]);
  });
});
