export { Channel } from './channel.js';
export type { ChannelEvents, RequestOptions } from './channel.js';
export { Message } from './message.js';
export { ChannelMux, resolveChannelSettings } from './mux.js';
export type { OpenChannelOptions, ChannelSettings, MuxHost } from './mux.js';
export type { ChannelHost, SessionChild } from './host.js';
export type { TransportKind } from './transport.js';
export type { MqChannelOptions } from './mq-transport.js';
