/**
 * Queue attributes for tests whose `mq` channels do not need the default size.
 *
 * The kernel charges every queue `maxMessages × messageSize` (plus a little) against RLIMIT_MSGQUEUE, which is
 * per user — 819 200 bytes by default, root included — and shared by every process of that user: the two test
 * files running at once and their peers. A default channel (two queues of 10 × 8192) costs ~165 KB, so five of
 * them across both files make the next mq_open fail with EMFILE. With these, a channel costs ~21 KB; messages
 * larger than ~1 KiB still pass, by arena handle.
 */
import type { MqChannelOptions } from '../../src/index.js';

export const SMALL_MQ: MqChannelOptions = { maxMessages: 10, messageSize: 1024 };
