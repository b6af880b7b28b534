/**
 * The typed boundary to the C++ addon. This is the only module that loads the binding; every other module
 * imports from here. Each function validates its arguments in C++ before any system call (TypeError /
 * RangeError), and every failing system call throws a {@link NativeError}.
 *
 * Names passed here are bare POSIX names without the leading slash (`shmx.sa.demo...`), at most 250 bytes of
 * `[A-Za-z0-9._-]`.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** An error thrown by a failing system call in the addon. */
export interface NativeError extends Error {
  /** errno name, e.g. `ENOENT`, or an shmx code such as `ENOMQUEUEFS`. */
  code: string;
  /** The positive errno value (0 for shmx codes). */
  errno: number;
  /** The system call that failed, e.g. `shm_open`. */
  syscall: string;
  /** The kernel object the call was about (segment or queue name, pid, fd). */
  resource: string;
}

/** Attributes of an open POSIX message queue. */
export interface MqAttributes {
  maxMessages: number;
  messageSize: number;
  currentMessages: number;
}

/** Options of {@link NativeBinding.mqOpen}. */
export interface MqOpenOptions {
  /** Create the queue (O_CREAT). Default false. */
  create?: boolean;
  /** With `create`: fail with EEXIST when it exists (O_EXCL). Default true when `create`. */
  exclusive?: boolean;
  /** With `create`: mq_maxmsg. Default 10 (the usual `fs.mqueue.msg_default`). */
  maxMessages?: number;
  /** With `create`: mq_msgsize in bytes. Default 8192. */
  messageSize?: number;
  /** With `create`: permission bits. Default 0o600. Applied exactly (not masked by the umask) when `exclusive`. */
  mode?: number;
}

/** An open POSIX message queue descriptor (non-blocking). Closed on `close()` or when garbage-collected. */
export interface NativeMessageQueue {
  readonly name: string;
  /** The descriptor, or -1 once closed. */
  readonly fd: number;
  /** Sends one message. Returns false when the queue is full (EAGAIN); nothing is sent then. */
  send(data: ArrayBufferView, priority?: number): boolean;
  /** Receives one message without blocking; null when the queue is empty. */
  receive(): Uint8Array | null;
  /**
   * Resolves with the next message, waiting on the event loop (uv_poll on the descriptor) without blocking it.
   * Several calls may be pending; they resolve in call order. Pending calls reject with `ECLOSED` on close.
   */
  receiveAsync(): Promise<Uint8Array>;
  attributes(): MqAttributes;
  close(): void;
}

/** Credentials of the process at the other end of a connected Unix socket (SO_PEERCRED). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** `ok`: woken (or spuriously woken: re-check the word); `not-equal`: the word differed; `timed-out`. */
export type FutexWaitResult = 'ok' | 'not-equal' | 'timed-out' | 'cancelled';

/**
 * A reusable asynchronous waiter on one Int32 word of a shared mapping. It owns a native thread that parks
 * in the kernel futex (costing no CPU) and resolves on the event loop. One wait at a time.
 */
export interface NativeFutexWaiter {
  /** Resolves when woken, when the word differs from `expected`, on timeout (`timeoutMs` < 0: none), or on cancel. */
  wait(expected: number, timeoutMs: number): Promise<FutexWaitResult>;
  /** Cancels the pending wait (resolves it with `cancelled`); returns false when none was pending. */
  cancel(): boolean;
  /** Stops the thread; a pending wait resolves with `cancelled`. Idempotent. */
  close(): void;
  readonly busy: boolean;
}

/** Internal counters of a doorbell (tests and diagnostics). */
export interface DoorbellCounters {
  /** Times `onRing` ran (once per batch of datagrams). */
  wakeups: number;
  /** Datagrams taken. */
  datagrams: number;
  /** Times this side rang its peer (`ring()` calls on a connected doorbell). */
  rings: number;
  /** True once connected to the peer: nobody else can ring it then. */
  connected: boolean;
}

/**
 * An event-loop doorbell: a Unix datagram socket bound to an abstract name (gone when this process dies), then
 * connected to the peer's doorbell — from then on only the peer can ring it (the kernel refuses anyone else's
 * datagrams). `onRing` runs on the event loop, once per batch of rings. Does not keep the process alive unless
 * `ref()`ed.
 */
export interface NativeDoorbell {
  readonly name: string;
  readonly counters: DoorbellCounters;
  /**
   * Connects to the peer's doorbell (once): only it may ring us now, and {@link ring} rings it. False when
   * nobody is bound to that name any more (the peer closed or died); throws on anything else (EPERM: that
   * socket is connected elsewhere — not the peer's fresh doorbell).
   */
  connect(peerName: string): boolean;
  /** Rings the peer: true when delivered or our earlier rings are still pending there, false when it is gone. */
  ring(): boolean;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface NativeBinding {
  /** How mapped segments become SharedArrayBuffers in this process: Node-API's call or V8's backing store. */
  readonly sharedBufferBackend: 'node-api' | 'v8';

  // POSIX shared-memory segments
  /** Creates a segment exclusively (O_EXCL), sizes it and reserves its pages with posix_fallocate. */
  shmCreate(name: string, size: number, mode: number): void;
  /** Size in bytes of an existing segment (fstat). */
  shmSize(name: string): number;
  /** Grows a segment to `size` bytes, reserving the new pages in chunks. Never shrinks. */
  shmGrow(name: string, size: number): void;
  /** Removes the name. Returns false when it did not exist. */
  shmUnlink(name: string): boolean;
  /**
   * Gives the segment's pages back now (punches a hole over its whole size; the size stays). Every mapping then
   * reads zeros. Returns false when it does not exist.
   */
  shmReleasePages(name: string): boolean;
  /** Names in /dev/shm that start with `prefix`. */
  shmList(prefix: string): string[];
  /** Maps the whole segment (MAP_SHARED, read-write) as a SharedArrayBuffer; unmapped when collected. */
  shmMap(name: string): SharedArrayBuffer;

  // POSIX message queues
  mqOpen(name: string, options?: MqOpenOptions): NativeMessageQueue;
  /** Removes the queue name. Returns false when it did not exist. */
  mqUnlink(name: string): boolean;
  /** Queue names starting with `prefix`; throws `ENOMQUEUEFS` when /dev/mqueue is not mounted. */
  mqList(prefix: string): string[];

  // process facts
  /** kill(pid, 0): ESRCH → false, EPERM → true (it exists, we may not signal it). */
  isAlive(pid: number): boolean;
  /** Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22); null when it does not exist. */
  processStartTime(pid: number): number | null;
  /** SO_PEERCRED of a connected Unix socket descriptor. */
  peerCredentials(fd: number): PeerCredentials;
  /** readlink(/proc/<pid>/exe); null when the process does not exist. */
  executablePath(pid: number): string | null;

  // futex doorbells on a word of a shared mapping (not FUTEX_PRIVATE: they cross processes)
  /** Blocks the calling thread; `timeoutMs` < 0 waits without limit. */
  futexWait(buffer: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): FutexWaitResult;
  /** Wakes up to `count` waiters; returns how many were woken. */
  futexWake(buffer: SharedArrayBuffer, byteOffset: number, count: number): number;
  createFutexWaiter(buffer: SharedArrayBuffer, byteOffset: number): NativeFutexWaiter;

  // event-loop doorbells (abstract-namespace datagram sockets, at most 107 bytes of name)
  /** Binds a doorbell; EADDRINUSE when the name is taken. */
  createDoorbell(name: string, onRing: () => void): NativeDoorbell;
}

const here = dirname(fileURLToPath(import.meta.url));

function loadBinding(): NativeBinding {
  const require = createRequire(import.meta.url);
  // src/native.ts and dist/native.js both sit one level below the package root.
  const path = process.env.SHMX_ADDON ?? join(here, '..', 'build', 'Release', 'shmx.node');
  return require(path) as NativeBinding;
}

/** The loaded addon. */
export const native: NativeBinding = loadBinding();
