/** Raw master-channel frames, for tests that play a misbehaving peer: [u32 length][u8 type][3 zero][payload]. */
export function frame(type: number, payload: Buffer | string): Buffer {
  const body = Buffer.from(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(body.length, 0);
  head[4] = type;
  return Buffer.concat([head, body]);
}
