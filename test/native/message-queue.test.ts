/**
 * POSIX message queues: a round trip between two processes (receiveAsync on the event loop), back-pressure,
 * size and limit errors, and listing with and without /dev/mqueue.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';

import { MQ_READABLE, MQ_WRITABLE, native, type NativeMessageQueue } from '../../src/native.js';
import { Created, commandExists, expectClean, isRoot, nobodyChild, nodeChild, childScript, thrown, inPrivateMountNamespace } from './helpers.js';

const created = new Created();
const open: NativeMessageQueue[] = [];
afterEach(() => {
  for (const q of open.splice(0)) q.close();
  created.removeAll();
});
afterAll(() => expect(created.leftovers()).toEqual([]));

function create(tag: string, options: { maxMessages?: number; messageSize?: number } = {}): NativeMessageQueue {
  const q = native.mqOpen(created.queue(tag), { create: true, ...options });
  open.push(q);
  return q;
}

function mqueueMounted(): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === '/dev/mqueue' && line.split(' ')[2] === 'mqueue');
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

describe('message queues', () => {
  it('round-trips messages between two processes with receiveAsync', async () => {
    const req = create('req', { maxMessages: 10, messageSize: 256 });
    const resp = create('resp', { maxMessages: 10, messageSize: 256 });
    const count = 200;
    const child = nodeChild('mq-echo', [req.name, resp.name, count]);
    await child.line('ready');
    for (let i = 0; i < count; i++) {
      const payload = new Uint8Array(1 + (i % 256));
      for (let j = 0; j < payload.length; j++) payload[j] = (i + j) & 0xff;
      expect(req.send(payload)).toBe(true);
      const echoed = await resp.receiveAsync();
      expect(echoed).toEqual(Buffer.from(payload));
    }
    await child.line('echoed');
    expectClean(await child.exited);
  });

  it('resolves several pending receiveAsync calls in call order', async () => {
    const q = create('order');
    const pending = [q.receiveAsync(), q.receiveAsync(), q.receiveAsync()];
    await new Promise((r) => setTimeout(r, 20)); // really parked on the event loop
    q.send(bytes('one'));
    q.send(bytes('two'));
    q.send(bytes('three'));
    expect((await Promise.all(pending)).map(text)).toEqual(['one', 'two', 'three']);
  });

  it('send returns false on a full queue and sends nothing; receive returns null when empty', () => {
    const q = create('full', { maxMessages: 2, messageSize: 16 });
    expect(q.send(bytes('a'))).toBe(true);
    expect(q.send(bytes('b'), 5)).toBe(true);
    expect(q.send(bytes('c'))).toBe(false);
    expect(q.attributes()).toEqual({ maxMessages: 2, messageSize: 16, currentMessages: 2 });
    expect(text(q.receive()!)).toBe('b'); // higher priority first
    expect(text(q.receive()!)).toBe('a');
    expect(q.receive()).toBeNull();
  });

  it('sends from any TypedArray or DataView view without copying the wrong bytes', () => {
    const q = create('views', { messageSize: 32 });
    const backing = new Uint8Array(16).map((_, i) => i);
    q.send(new Uint8Array(backing.buffer, 4, 3));
    q.send(new DataView(backing.buffer, 10, 2));
    q.send(new Uint16Array(backing.buffer, 2, 2));
    expect([...q.receive()!]).toEqual([4, 5, 6]);
    expect([...q.receive()!]).toEqual([10, 11]);
    expect([...q.receive()!]).toEqual([2, 3, 4, 5]);
  });

  it('a message larger than messageSize is a RangeError and is not sent', () => {
    const q = create('big', { messageSize: 64 });
    const err = thrown(() => q.send(new Uint8Array(65)));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toBe("message of 65 bytes exceeds the queue's messageSize 64");
    expect(q.attributes().currentMessages).toBe(0);
    expect(q.send(new Uint8Array(64))).toBe(true);
  });

  it('close rejects pending receiveAsync with ECLOSED, and later calls fail with ECLOSED', async () => {
    const q = native.mqOpen(created.queue('closed'), { create: true });
    const pending = q.receiveAsync();
    q.close();
    await expect(pending).rejects.toMatchObject({ code: 'ECLOSED', resource: q.name });
    expect(q.fd).toBe(-1);
    q.close(); // idempotent
    for (const call of [() => q.send(bytes('x')), () => q.receive(), () => q.attributes(), () => q.receiveAsync()]) {
      const err = thrown(call);
      expect(err.code).toBe('ECLOSED');
      expect(err.message).toBe(`message queue '${q.name}' is closed (ECLOSED)`);
    }
  });

  it('receiveInto fills a reused buffer: the length, or -1 when empty; a buffer under messageSize is refused', () => {
    const q = create('into', { messageSize: 32 });
    const target = new Uint8Array(40).fill(0xee);
    expect(q.receiveInto(target)).toBe(-1);
    q.send(bytes('hello'));
    expect(q.receiveInto(target)).toBe(5);
    expect(text(target.subarray(0, 5))).toBe('hello');
    expect(target[5]).toBe(0xee);
    const small = thrown(() => q.receiveInto(new Uint8Array(31)));
    expect(small).toBeInstanceOf(RangeError);
    expect(small.message).toBe("target of 31 bytes is smaller than the queue's messageSize 32");
    expect(thrown(() => q.receiveInto(new Uint16Array(32) as unknown as Uint8Array))).toBeInstanceOf(TypeError);
  });

  it('watch reports readable while a message waits and writable while there is room, on every turn, until stopped', async () => {
    const q = create('watch', { maxMessages: 2, messageSize: 16 });
    const turn = () => new Promise((r) => setImmediate(r));
    const seen: number[] = [];
    q.watch(MQ_READABLE, (ready) => seen.push(ready));
    await turn();
    await turn();
    expect(seen).toEqual([]); // empty: nothing to report
    q.send(bytes('a'));
    await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(2), { timeout: 2000, interval: 1 });
    expect(new Set(seen)).toEqual(new Set([MQ_READABLE])); // level-triggered: again while it waits
    q.watch(0);
    await turn();
    const stopped = seen.length;
    await turn();
    await turn();
    expect(seen.length).toBe(stopped);

    // Writable: a full queue says nothing until a message is taken.
    q.send(bytes('b'));
    expect(q.send(bytes('c'))).toBe(false);
    const room: number[] = [];
    q.watch(MQ_WRITABLE, (ready) => {
      room.push(ready);
      q.watch(0);
    });
    await turn();
    await turn();
    expect(room).toEqual([]);
    expect(q.receive()).not.toBeNull();
    await vi.waitFor(() => expect(room).toEqual([MQ_WRITABLE]), { timeout: 2000, interval: 1 });
    expect(thrown(() => q.watch(MQ_READABLE | MQ_WRITABLE | 4))).toBeInstanceOf(RangeError);
  });

  it('close stops a watch; watch on a closed queue fails with ECLOSED', async () => {
    const q = native.mqOpen(created.queue('watchclose'), { create: true, maxMessages: 2, messageSize: 16 });
    const seen: number[] = [];
    q.watch(MQ_WRITABLE, (ready) => seen.push(ready));
    q.close();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([]);
    expect(thrown(() => q.watch(MQ_READABLE))).toMatchObject({ code: 'ECLOSED' });
  });

  it('opening a missing queue fails with ENOENT; O_EXCL on an existing one with EEXIST', () => {
    const name = created.queue('missing');
    expect(thrown(() => native.mqOpen(name))).toMatchObject({ code: 'ENOENT', syscall: 'mq_open', resource: name });
    create('excl');
    const existing = open[open.length - 1]!.name;
    expect(thrown(() => native.mqOpen(existing, { create: true }))).toMatchObject({ code: 'EEXIST' });
    const again = native.mqOpen(existing, { create: true, exclusive: false });
    again.close();
    expect(native.mqUnlink(existing)).toBe(true);
    expect(native.mqUnlink(existing)).toBe(false);
  });

  it('as an unprivileged user, maxMessages above fs.mqueue.msg_max is EINVAL naming the sysctl', async (ctx) => {
    ctx.skip(!isRoot || !commandExists('setpriv'), 'needs root and setpriv(1) to run a child as user nobody');
      const name = created.queue('limit');
      const child = nobodyChild('mq-limit', [name]);
      const err = await child.json<Record<string, unknown>>('error');
      expectClean(await child.exited);
      const msgMax = readFileSync('/proc/sys/fs/mqueue/msg_max', 'utf8').trim();
      expect(err).toMatchObject({ code: 'EINVAL', errno: 22, syscall: 'mq_open', resource: name });
      expect(err.message).toContain(`fs.mqueue.msg_max (now ${msgMax})`);
      expect(err.message).toContain('fs.mqueue.msgsize_max');
    },
  );

  it('a created queue gets exactly the mode asked for, whatever the umask', async (ctx) => {
    ctx.skip(!isRoot || !commandExists('setpriv'), 'needs root and setpriv(1) to run a child as user nobody');
      const previous = process.umask(0o077);
      let name: string;
      try {
        name = created.queue('mode');
        native.mqOpen(name, { create: true, mode: 0o666 }).close();
      } finally {
        process.umask(previous);
      }
      // With the umask applied the queue would be 0600 and user nobody could not open it read-write.
      const child = nobodyChild('open-queue', [name]);
      expect(await child.json('opened')).toBe(true);
      expectClean(await child.exited);
    },
  );

  it('mqList: ENOMQUEUEFS without /dev/mqueue, our queue when it is mounted', () => {
    const q = create('list');
    if (mqueueMounted()) {
      expect(native.mqList('shmx.t.list.')).toContain(q.name);
    } else {
      const err = thrown(() => native.mqList('shmx.t.list.'));
      expect(err).toMatchObject({ code: 'ENOMQUEUEFS', errno: 0, syscall: 'statfs', resource: '/dev/mqueue' });
      expect(err.message).toContain('mount -t mqueue none /dev/mqueue');
    }
  });

  it('mqList lists our queue where /dev/mqueue is mounted (in a private mount namespace)', async (ctx) => {
    ctx.skip(!isRoot || !commandExists('unshare'), 'needs root and unshare(1) for a private mount namespace');
      const q = create('nslist');
      const child = inPrivateMountNamespace(
        // /dev/mqueue does not exist here and the host's /dev must stay untouched: an empty tmpfs over /dev,
        // visible only in this mount namespace, gets the mount point.
        'mount -t tmpfs tmpfs /dev && mkdir /dev/mqueue && mount -t mqueue none /dev/mqueue && ' +
          `exec "${process.execPath}" --import tsx "${childScript}" mq-list shmx.t.nslist.`,
      );
      const names = await child.json<string[]>('list');
      expectClean(await child.exited);
      expect(names).toContain(q.name);
    },
  );
});
