export { checkCodec } from './codec.js';
export type { Codec } from './codec.js';
export { rawCodec } from './raw.js';
export { msgpackCodec } from './msgpack.js';
export type { MsgpackOptions } from './msgpack.js';
export { typed, TypedChannel, TypedMessage, LARGE_VALUE_BYTES } from './typed-channel.js';
export type { TypedChannelEvents } from './typed-channel.js';
