/**
 * Every scenario of the soak, one per file. A new scenario: a file exporting a Scenario (see ../scenario.ts)
 * and one line here.
 */
import type { Scenario } from '../scenario.js';
import { close } from './close.js';
import { flood } from './flood.js';
import { handshake } from './handshake.js';
import { alloc, channelOpen } from './loops.js';
import { open } from './open.js';
import { shutdown } from './shutdown.js';
import { transferMq, transferShm, transferSocket } from './transfer.js';

export const scenarios: readonly Scenario[] = [
  handshake,
  open,
  alloc,
  channelOpen,
  transferShm,
  transferMq,
  transferSocket,
  close,
  shutdown,
  flood,
];
