/**
 * Flood with backpressure between real processes: `send()` until false, wait for `'drain'`, repeat — in both
 * directions, with small messages and now and then one near the largest inline size, so that a big record is
 * refused while the ring is full of small ones. Before the want-drain fix the consumer granted such a request
 * after a few small reads, the producer found no room, and nobody woke it again: about one flood in ten
 * stalled here. The long version is `tsx soak/flood.ts --runs 1000`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/index.js';
import { checkReceived, floodConsumer, floodFromPeer, floodSend, type FloodMetadata } from '../../soak/flood.js';
import type { Child } from '../helpers/child.js';
import { finishPeer, withPeer } from '../helpers/peer.js';

const STALL_MS = 2000;
const MESSAGES = 3000;
const BIG = { bigEvery: 700, bigSize: 32_000 };
const NO_PAUSE = { pauseEvery: 0, pauseMicros: 0 };

let peer: Child;
let session: Session;
let serverApp: string;

beforeAll(async () => {
  ({ peer, session, serverApp } = await withPeer({ stallMs: STALL_MS }, 'flood-peer.ts'));
});

afterAll(async () => {
  await finishPeer(peer, session, serverApp);
});

describe('flood with backpressure', () => {
  it('never stalls: 20 floods each way, every message arrives in order, a request afterwards is answered', async () => {
    const failures: string[] = [];
    for (let run = 0; run < 40; run++) {
      const metadata: FloodMetadata = { flood: true, ...NO_PAUSE };
      const channel = await session.openChannel({ metadata });
      floodConsumer(channel, NO_PAUSE, STALL_MS);
      try {
        if (run % 2 === 0) {
          await floodSend(channel, MESSAGES, 64, STALL_MS, BIG);
          await checkReceived(channel, MESSAGES, STALL_MS);
        } else {
          await floodFromPeer(channel, MESSAGES, 64, STALL_MS + 3000, BIG);
        }
      } catch (err) {
        failures.push(`run ${run} (${run % 2 === 0 ? 'to the peer' : 'from the peer'}): ${String(err)}`);
      }
      channel.close();
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
