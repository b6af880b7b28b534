export * from './names.js';
export * from './liveness.js';
export * from './ledger.js';
export * from './sweep.js';
export * from './periodic-sweep.js';
