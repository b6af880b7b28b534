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
import { ShmxError, type ShmxErrorCode } from './errors.js';

/** An error thrown by a failing system call in the addon: a {@link ShmxError} (see asShmxError below). */
export interface NativeError extends ShmxError {
  /** errno name, e.g. `ENOENT`, or an shmx code such as `ENOMQUEUEFS`. */
  code: ShmxErrorCode;
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

/** {@link NativeMessageQueue.watch}: a message waits. */
export const MQ_READABLE = 1;
/** {@link NativeMessageQueue.watch}: there is room for a message. */
export const MQ_WRITABLE = 2;

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
   * Receives one message without blocking into `target` (at least `messageSize` bytes): its length, or -1 when
   * the queue is empty. Nothing is allocated: for readers that reuse one buffer.
   */
  receiveInto(target: Uint8Array): number;
  /**
   * Resolves with the next message, waiting on the event loop (uv_poll on the descriptor) without blocking it.
   * Several calls may be pending; they resolve in call order. Pending calls reject with `ECLOSED` on close.
   */
  receiveAsync(): Promise<Uint8Array>;
  /**
   * Watches the queue on the event loop: while `events` ({@link MQ_READABLE} | {@link MQ_WRITABLE}) is not 0,
   * `onReady(ready)` runs whenever a message waits (readable) or there is room (writable) — level-triggered, on
   * every loop turn until the caller takes the messages, fills the room or stops watching. `onReady` is kept
   * from the previous call when omitted. The poll stays registered while the interest stays the same (no system
   * call per message), and does not keep the process alive by itself. A failure of the poll itself stops the
   * watch and calls `onReady(0, error)`.
   */
  watch(events: number, onReady?: (ready: number, error?: Error) => void): void;
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
  /**
   * Maps the whole segment (MAP_SHARED, read-write) as a SharedArrayBuffer; unmapped when collected. The mapping
   * is registered with the addon's SIGBUS handler: if the segment is truncated under it, the next access reads
   * zero pages instead of killing the process, and {@link NativeBinding.shmFaulted} turns true.
   * `EMAPPINGS` when the process already has 16384 registered mappings.
   */
  shmMap(name: string): SharedArrayBuffer;
  /** True when the segment behind `buffer` (from shmMap) was truncated and its mapping replaced by zero pages. */
  shmFaulted(buffer: SharedArrayBuffer): boolean;
  /**
   * Two process-wide Int32 words (the same memory in every thread); the SIGBUS handler adds 1 to word 0 for each
   * mapping it faults. One read of word 0 tells whether anything was truncated since the last look.
   */
  readonly segmentFaultEpoch: SharedArrayBuffer;
  /** Whether the SIGBUS handler is installed in this process (false only when sigaction failed). */
  readonly sigbusHandler: boolean;

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
  /** CPU time the calling thread has used, in µs (CLOCK_THREAD_CPUTIME_ID): one Worker's own share. */
  threadCpuMicros(): number;
  /** Opens (creating 0600, never through a symlink) and flock()s `path` exclusively without blocking; returns
   *  the descriptor holding the lock until it is closed. EWOULDBLOCK while another holder has it. */
  lockFile(path: string): number;

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

// ---------------------------------------------------------------------------------------------------------
// Loading. Importing shmx must not load the addon (types, Universe and name parsing work without it), so
// `native` starts as a proxy: the first property read loads the binding, then re-points the exported
// `native` binding at the real object, so later calls go straight to the addon without the proxy.

/** src/native.ts and dist/native.js both sit one level below the package root. */
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Finds and loads the addon: `SHMX_ADDON` (a path to a `.node` file, e.g. the sanitizer build) when set, else
 * node-gyp-build's rule — build/Release (a build from source) first, then the prebuild matching this
 * platform, libc and NODE_MODULE_VERSION under prebuilds/.
 */
function loadBinding(): NativeBinding {
  const require = createRequire(import.meta.url);
  const override = process.env.SHMX_ADDON;
  try {
    if (override !== undefined && override !== '') return require(override) as NativeBinding;
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    return nodeGypBuild(packageRoot) as NativeBinding;
  } catch (cause) {
    throw addonError(cause, override);
  }
}

/** One error for every way loading can fail: what is missing or incompatible, and how to build it. */
function addonError(cause: unknown, override: string | undefined): ShmxError {
  const platform = `${process.platform}-${process.arch}`;
  const runtime = `Node ${process.versions.node} (ABI ${process.versions.modules}, NODE_MODULE_VERSION)`;
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  const what =
    override !== undefined && override !== ''
      ? `the addon named by SHMX_ADDON (${override}) could not be loaded on ${platform}, ${runtime}`
      : /No native build was found/.test(reason)
        ? `no prebuilt shmx addon matches ${platform} (glibc) on ${runtime}`
        : `the shmx addon could not be loaded on ${platform}, ${runtime}`;
  return new ShmxError(
    'ENOADDON',
    `${what}: ${reason}. Build it from source (needs g++ with C++20, make, python3 and Node's headers): ` +
      `\`npm rebuild shmx --build-from-source\` in your project, or \`npm run build:native\` in a checkout of shmx.`,
    { resource: packageRoot, cause },
  );
}

let loaded: NativeBinding | undefined;

function binding(): NativeBinding {
  if (loaded === undefined) {
    loaded = wrapBinding(loadBinding());
    native = loaded;
  }
  return loaded;
}

// ---------------------------------------------------------------------------------------------------------
// One error family (issue 11 item 5): an error the addon throws for a failing system call becomes a ShmxError in
// place — the ShmxError prototype, its own `code`, `errno`, `syscall` and `resource` kept — so that callers
// see one shape. Argument checks (TypeError, RangeError) stay what they are. Every function of the binding,
// every method of the objects it returns (message queues, futex waiters, doorbells) and every promise they
// return goes through this; the cost is one JavaScript frame per call, next to a system call.

/** Makes a native system-call error a {@link ShmxError} (in place); anything else is returned unchanged. */
export function asShmxError(err: unknown): unknown {
  if (err instanceof Error && !(err instanceof ShmxError) && typeof (err as { code?: unknown }).code === 'string' &&
    typeof (err as { syscall?: unknown }).syscall === 'string') {
    Object.setPrototypeOf(err, ShmxError.prototype);
    err.name = 'ShmxError';
  }
  return err;
}

function wrapFunction<F extends (...args: never[]) => unknown>(fn: F, self?: object): F {
  return function (this: unknown, ...args: never[]) {
    let result: unknown;
    try {
      result = fn.apply(self ?? this, args);
    } catch (err) {
      throw asShmxError(err);
    }
    return wrapResult(result);
  } as unknown as F;
}

function wrapResult(result: unknown): unknown {
  if (result instanceof Promise) return result.catch((err: unknown) => Promise.reject(asShmxError(err)));
  if (typeof result === 'object' && result !== null) {
    const proto = Object.getPrototypeOf(result) as object | null;
    // Only objects of the addon's own classes (their methods are fixed on the prototype, so each instance is
    // seen through a proxy whose methods convert errors); data (arrays, buffers, plain records) is left alone.
    if (proto !== null && proto !== Object.prototype && !Array.isArray(result) && !ArrayBuffer.isView(result) &&
      !(result instanceof ArrayBuffer) && !(result instanceof SharedArrayBuffer)) {
      return addonObject(result);
    }
  }
  return result;
}

/** An addon object whose methods throw (and reject with) ShmxErrors; each method wrapped once per object. */
function addonObject<T extends object>(target: T): T {
  // Keyed by the function itself: a method replaced on the instance (a test's stand-in) is wrapped afresh.
  const methods = new WeakMap<object, unknown>();
  return new Proxy(target, {
    get: (t, key) => {
      const value = Reflect.get(t, key, t) as unknown;
      if (typeof value !== 'function') return value;
      let method = methods.get(value);
      if (method === undefined) {
        method = wrapFunction(value as (...args: never[]) => unknown, t);
        methods.set(value, method);
      }
      return method;
    },
  });
}

function wrapBinding(raw: NativeBinding): NativeBinding {
  const wrapped: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw as unknown as Record<string, unknown>)) {
    wrapped[key] = typeof value === 'function' ? wrapFunction(value as (...args: never[]) => unknown) : value;
  }
  return wrapped as unknown as NativeBinding;
}

/**
 * The addon, loaded on first use. A failure to load throws a {@link ShmxError} with code `ENOADDON` from that
 * first use (and again from each later one).
 */
export let native: NativeBinding = new Proxy({} as NativeBinding, {
  get: (_target, key) => Reflect.get(binding(), key),
  has: (_target, key) => Reflect.has(binding(), key),
  ownKeys: () => Reflect.ownKeys(binding()),
  getOwnPropertyDescriptor: (_target, key) => {
    const descriptor = Reflect.getOwnPropertyDescriptor(binding(), key);
    // A proxy may only report a property as non-configurable if its target has it so; the target is empty.
    return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
  },
  set: () => false,
  defineProperty: () => false,
  deleteProperty: () => false,
});

/** Loads the addon now (it is otherwise loaded on first use); throws the `ENOADDON` {@link ShmxError} if it cannot. */
export function loadNative(): NativeBinding {
  return binding();
}
