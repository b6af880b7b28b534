/**
 * Explicit resource management (`using` / `await using`, TypeScript 5.2+). Servers, sessions and channels are
 * AsyncDisposable; blocks and messages Disposable. Node defines `Symbol.dispose` and `Symbol.asyncDispose` since
 * 18.18 / 20.4 (as `Symbol.for('nodejs.dispose')` / `Symbol.for('nodejs.asyncDispose')`; from Node 24 they are
 * V8's built-in well-known symbols, which Node's own objects use then); for an older Node 20
 * this module defines them the same way, before any shmx class is defined, so that shmx objects, Node's own
 * objects and TypeScript's `using` helpers (which look up `Symbol.asyncDispose` first) agree on the one symbol.
 * Import it (for its effect) in every module that defines a dispose method.
 */
const symbols = Symbol as unknown as { dispose?: symbol; asyncDispose?: symbol };
symbols.dispose ??= Symbol.for('nodejs.dispose');
symbols.asyncDispose ??= Symbol.for('nodejs.asyncDispose');

export {};
