/**
 * The one clock two processes of a session compare readings of: CLOCK_MONOTONIC in µs. A side stamps when it
 * rang the peer; the peer subtracts that from when it went idle to learn how long it waited (spin-policy.ts).
 *
 * performance.now() reads CLOCK_MONOTONIC relative to this process's start; the offset, taken once, turns it
 * into the machine-wide clock without a BigInt or an array per reading. It is taken from `process.hrtime()`:
 * the first `process.hrtime.bigint()` of a process returns a stale value — tens of µs old in an empty script,
 * ~6 ms in a session process on Node 20, whose sides' clocks then disagreed by that much: every gap a side
 * learned was 6 ms too long or negative, and the spin policy never spun. The reading is bracketed between two
 * performance.now() calls and the midpoint taken. The first `process.hrtime()` of a process is slow too (~60 µs
 * quiet, ms under load) and returns late in its bracket: one bracket left the offset 20–50 µs off, and a CI run
 * saw a stamp from the peer 19 µs in our future. So the tightest of several brackets is kept (under a µs wide).
 */
const MONOTONIC_OFFSET_MICROS = ((): number => {
  let offset = 0;
  let tightest = Infinity;
  for (let attempt = 0; attempt < 64 && tightest > 1; attempt++) {
    const before = performance.now();
    const [seconds, nanos] = process.hrtime();
    const after = performance.now();
    const width = (after - before) * 1000;
    if (width < tightest) {
      tightest = width;
      offset = seconds * 1e6 + nanos / 1e3 - ((before + after) / 2) * 1000;
    }
  }
  return offset;
})();

/** Monotonic microseconds, comparable between processes of one machine. */
export function nowMicros(): number {
  return performance.now() * 1000 + MONOTONIC_OFFSET_MICROS;
}
