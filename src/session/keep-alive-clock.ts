/**
 * One keep-alive timer per process and interval, shared by every session. All sessions ping in the same
 * tick, so a peer with many sessions to us handles their pings in one wake-up instead of one each: idle
 * sessions cost next to nothing however many there are.
 */

const clocks = new Map<number, { timer: NodeJS.Timeout; ticks: Set<() => void> }>();

/** Calls `tick` every `intervalMs` (unref'd); returns the function that stops it. */
export function onKeepAliveTick(intervalMs: number, tick: () => void): () => void {
  let clock = clocks.get(intervalMs);
  if (clock === undefined) {
    const ticks = new Set<() => void>();
    const timer = setInterval(() => {
      for (const t of [...ticks]) t();
    }, intervalMs);
    timer.unref();
    clock = { timer, ticks };
    clocks.set(intervalMs, clock);
  }
  const entry = clock;
  entry.ticks.add(tick);
  return () => {
    entry.ticks.delete(tick);
    if (entry.ticks.size === 0 && clocks.get(intervalMs) === entry) {
      clearInterval(entry.timer);
      clocks.delete(intervalMs);
    }
  };
}
