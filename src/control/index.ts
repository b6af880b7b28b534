export { ControlClient } from './client.js';
export { controlSocketPath, CONTROL_COMMANDS, MAX_REQUEST_BYTES } from './protocol.js';
export type { ControlCommand, ControlErrorCode, ControlRequest, ControlResponse, ControlError, RequestId } from './protocol.js';
export type { ControlLimits, ControlSocketOptions } from './control-limits.js';
export type { ControlConnectionCounters } from './control-listener.js';
export type { OperationsOptions } from './operations.js';
export { registerShmxMetrics } from './metrics.js';
