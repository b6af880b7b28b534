/**
 * The spin policy's bookkeeping (no clock: the delivery loop measures, these tests play its reports): it spins
 * only while spinning has paid for itself in avoided wake-ups, backs off when spins miss, probes cheaply, and
 * never spins with `spinMicros: 0`.
 */
import { describe, expect, it } from 'vitest';
import { PROBE_EVERY, PROBE_MICROS, SpinPolicy, WAKE_COST_MICROS } from '../../src/channel/spin-policy.js';

describe('spin policy', () => {
  it('spins about twice the recent gap, never past spinMicros, while spins keep catching messages', () => {
    const p = new SpinPolicy(5 * WAKE_COST_MICROS);
    for (let i = 0; i < 20; i++) p.learnGap(3);
    for (let i = 0; i < 50; i++) {
      const b = p.budget();
      expect(b).toBeGreaterThan(3);
      expect(b).toBeLessThanOrEqual(5 * WAKE_COST_MICROS);
      p.spun(3, true); // caught after 3 µs: saved a wake-up
    }
  });

  it('spins at least what a wake-up costs while it pays, however short the recent gaps', () => {
    // A hot exchange: the peer answers within ~1 µs — but now and then it takes several µs (its own work, a minor
    // GC). A spin of twice the mean gap would park at each of those and push both sides out of the hot loop.
    const p = new SpinPolicy(100);
    for (let i = 0; i < 50; i++) {
      p.learnGap(0.5);
      p.spun(0.5, true);
    }
    expect(p.budget()).toBeGreaterThanOrEqual(WAKE_COST_MICROS);
    p.spun(8, true); // a slow turn, caught
    expect(p.budget()).toBeGreaterThanOrEqual(WAKE_COST_MICROS);
    // Never past spinMicros.
    const low = new SpinPolicy(WAKE_COST_MICROS / 3);
    for (let i = 0; i < 10; i++) low.learnGap(0.5);
    expect(low.budget()).toBe(WAKE_COST_MICROS / 3);
  });

  it('stops spinning when spins cost more than the wake-ups they save, and then only probes', () => {
    const late = 2 * WAKE_COST_MICROS; // each spin catches its message only after twice what a wake-up costs
    const p = new SpinPolicy(4 * WAKE_COST_MICROS);
    for (let i = 0; i < 20; i++) p.learnGap(late);
    let spent = 0;
    let saved = 0;
    let spins = 0;
    const idles = 64 * PROBE_EVERY;
    for (let i = 0; i < idles; i++) {
      const b = p.budget();
      if (b === 0) continue;
      spins++;
      const hit = b >= late;
      const s = hit ? late : b;
      spent += s;
      if (hit) saved += WAKE_COST_MICROS;
      p.spun(s, hit);
    }
    // What spinning cost beyond what it saved is bounded by the credit plus, per probe, the probe and the
    // trial a catching probe buys (one wake-up of credit, drained to at most half a wake-up of debt).
    const probes = idles / PROBE_EVERY;
    expect(spent - saved).toBeLessThanOrEqual(8 * WAKE_COST_MICROS + probes * (PROBE_MICROS + 2 * WAKE_COST_MICROS));
    expect(spins).toBeLessThanOrEqual(3 * probes + 8);
    expect(spins).toBeGreaterThan(0);
  });

  it('a probe that catches buys a short trial even when it waited longer than a wake-up costs', () => {
    const p = new SpinPolicy(100);
    for (let i = 0; i < 10; i++) p.spun(100, false); // cold: only probes
    let b = 0;
    while ((b = p.budget()) === 0);
    expect(b).toBe(Math.min(100, PROBE_MICROS));
    const late = 10;
    const waited = WAKE_COST_MICROS + late; // longer than a wake-up is worth (within a probe)
    expect(waited).toBeLessThanOrEqual(b);
    p.learnGap(waited);
    p.spun(waited, true);
    expect(p.state.credit).toBeGreaterThan(0); // the trial: the next idle spins
    expect(p.budget()).toBeGreaterThan(0);
    // The trial keeps waiting that long: each spin loses `late`, so it ends after credit / late spins.
    p.spun(waited, true);
    for (let i = 0; i < WAKE_COST_MICROS / late && p.budget() > 0; i++) p.spun(waited, true);
    expect(p.state.credit).toBeLessThanOrEqual(0);
    expect(p.budget()).toBe(0);
  });

  it('probes at once when the peer is awake and owes this side an answer, not only every PROBE_EVERY idles', () => {
    const p = new SpinPolicy(100);
    for (let i = 0; i < 10; i++) p.spun(100, false); // cold
    expect(p.budget(true)).toBe(Math.min(100, PROBE_MICROS));
    p.spun(PROBE_MICROS, false);
    expect(p.budget(true)).toBe(Math.min(100, PROBE_MICROS)); // every time, however many missed
    p.spun(PROBE_MICROS, false);
    const plain = Array.from({ length: PROBE_EVERY - 1 }, () => p.budget(false));
    expect(plain.every((b) => b === 0)).toBe(true); // without an answer due: the ordinary probe schedule
  });

  it('a spin that is not a probe buys no trial', () => {
    const p = new SpinPolicy(100);
    for (let i = 0; i < 20; i++) p.learnGap(2 * WAKE_COST_MICROS);
    while (p.budget() > 0) p.spun(2 * WAKE_COST_MICROS, true); // caught, but always too late: the credit drains
    expect(p.state.credit).toBeLessThanOrEqual(0);
  });

  it('misses drive it to probes of at most PROBE_MICROS, one in PROBE_EVERY idles', () => {
    const p = new SpinPolicy(1000);
    for (let i = 0; i < 20; i++) p.learnGap(10); // dense traffic, but spins that miss
    for (let i = 0; i < 10; i++) p.spun(1000, false);
    const budgets = Array.from({ length: 4 * PROBE_EVERY }, () => p.budget());
    expect(budgets.filter((b) => b > 0)).toHaveLength(4);
    expect(Math.max(...budgets)).toBe(PROBE_MICROS);
  });

  it('probes that catch messages quickly bring spinning back (a dense exchange resumes)', () => {
    const p = new SpinPolicy(100);
    for (let i = 0; i < 10; i++) p.spun(100, false);
    let resumed = -1;
    for (let i = 0; i < 40 * PROBE_EVERY && resumed < 0; i++) {
      const b = p.budget();
      if (b === 0) continue;
      p.learnGap(2);
      p.spun(2, true);
      if (p.state.credit > 0) resumed = i;
    }
    expect(resumed).toBeGreaterThan(0);
    expect(p.budget()).toBeGreaterThan(0);
  });

  it('no periodic probes while messages come further apart than a probe lasts (paced traffic)', () => {
    const p = new SpinPolicy(100);
    for (let i = 0; i < 20; i++) p.learnGap(2 * PROBE_MICROS); // e.g. requests paced at 10k/s
    for (let i = 0; i < 10; i++) p.spun(100, false); // spinning stopped paying
    const budgets = Array.from({ length: 8 * PROBE_EVERY }, () => p.budget());
    expect(budgets.every((b) => b === 0)).toBe(true);
    // Traffic turns dense again (gaps learned from the rings shrink): the probes come back.
    for (let i = 0; i < 20; i++) p.learnGap(PROBE_MICROS / 2);
    const again = Array.from({ length: 2 * PROBE_EVERY }, () => p.budget());
    expect(again.filter((b) => b > 0)).toHaveLength(2);
    // A side awaiting a reply from an awake peer still probes at once.
    for (let i = 0; i < 20; i++) p.learnGap(2 * PROBE_MICROS);
    expect(p.budget(true)).toBe(PROBE_MICROS);
  });

  it('spinMicros 0 never spins', () => {
    const p = new SpinPolicy(0);
    for (let i = 0; i < 4 * PROBE_EVERY; i++) expect(p.budget()).toBe(0);
  });
});
