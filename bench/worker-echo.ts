/**
 * The far side of the `worker_threads` reference path: answers every payload with its checksum.
 */
import { parentPort } from 'node:worker_threads';
import { checksum, encodeReply } from './checksum.js';

parentPort!.on('message', (bytes: Uint8Array) => parentPort!.postMessage(encodeReply(checksum(bytes), bytes.byteLength)));
