/**
 * `beforeGrow` (ArenaOpenOptions): called before every new segment and when the ceiling leaves no room; a throw
 * refuses the growth and changes nothing. The session quotas (src/session/quotas.ts) rely on it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Arena, type ArenaGrowth } from '../../src/index.js';

const UNIT = 64 * 1024;
const made: Arena[] = [];
afterEach(() => {
  for (const a of made.splice(0)) a.destroy();
});
let n = 0;
const name = () => `shmx.test.growhook.${process.pid}.${n++}`;

describe('arena beforeGrow', () => {
  it('sees each growth and the ceiling; a throw refuses the growth and leaves the arena as it was', () => {
    const seen: ArenaGrowth[] = [];
    let refuse = false;
    const arena = Arena.create(name(), {
      maxBytes: 4 * UNIT, initialBytes: UNIT, growChunk: UNIT,
      beforeGrow: (g) => {
        seen.push(g);
        if (refuse) throw new RangeError('no');
      },
    });
    made.push(arena);
    expect(seen).toEqual([{ arena: arena.name, neededBytes: UNIT, growBytes: UNIT, reservedBytes: 0, maxBytes: 4 * UNIT, overCeiling: false }]);
    const a = arena.alloc(2 * UNIT);
    expect(seen[1]).toMatchObject({ neededBytes: 2 * UNIT, growBytes: 2 * UNIT, reservedBytes: UNIT, overCeiling: false });
    refuse = true;
    expect(() => arena.alloc(UNIT + 1)).toThrow(RangeError);
    expect(arena.stats()).toMatchObject({ reservedBytes: 3 * UNIT, segments: 2 });
    refuse = false;
    expect(() => arena.alloc(2 * UNIT)).toThrow(expect.objectContaining({ code: 'EARENAFULL' }));
    expect(seen.at(-1)).toMatchObject({ neededBytes: 2 * UNIT, growBytes: 0, reservedBytes: 3 * UNIT, overCeiling: true });
    a.release();
  });

  it('reservedBytes follows the shared segment table (header + committed segments), whoever grew it', () => {
    const arena = Arena.create(name(), { maxBytes: 8 * UNIT, initialBytes: UNIT, growChunk: UNIT });
    made.push(arena);
    const peer = Arena.open(arena.name);
    const header = arena.reservedBytes - UNIT;
    expect(header).toBeGreaterThan(0);
    const b = peer.alloc(3 * UNIT); // grown by the other instance
    expect(arena.reservedBytes).toBe(header + 4 * UNIT);
    expect(arena.stats().reservedBytes).toBe(4 * UNIT);
    b.release();
    peer.close();
    expect(peer.reservedBytes).toBe(0);
  });

  it('rejects a beforeGrow that is not a function before anything is created', () => {
    expect(() => Arena.create(name(), { maxBytes: UNIT, beforeGrow: 1 as never })).toThrow(TypeError);
  });
});
