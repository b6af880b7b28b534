/**
 * Everything an operator gets from a running SessionServer, started and stopped as one: the Prometheus metrics
 * (metrics.ts) and the control socket (control-server.ts answering with handler.ts). SessionServer calls
 * `startOperations` once it listens and `close` when it shuts down.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { resolveControlLimits, type ControlSocketOptions } from './control-limits.js';
import { ControlServer } from './control-server.js';
import { controlHandler } from './handler.js';
import { ServerMetrics } from './metrics.js';
import { controlSocketPath } from './protocol.js';
import type { ControlTarget } from './target.js';

/** Options of a server's operations: its control socket and metrics (docs/operations.md). */
export interface OperationsOptions {
  /** The control socket: on by default; `false` turns it off. */
  control?: boolean | ControlSocketOptions;
  /** Prometheus metrics: on by default; `false` turns them off (and with them the `metrics` command). */
  metrics?: boolean;
}

export interface Operations {
  readonly metricsRegistry: Registry | undefined;
  readonly controlSocketPath: string | undefined;
  close(): Promise<void>;
}

export async function startOperations(
  target: ControlTarget,
  options: OperationsOptions & { runDirectory: string; mode: number },
  logger: Logger,
): Promise<Operations> {
  const metrics = options.metrics === false ? undefined : new ServerMetrics(target);
  let control: ControlServer | undefined;
  if (options.control !== false) {
    const settings = typeof options.control === 'object' ? options.control : {};
    try {
      control = await ControlServer.listen(
        controlSocketPath(options.runDirectory, target.serverApp),
        { ...settings, mode: settings.mode ?? options.mode },
        controlHandler(target, metrics, () => control, logger),
        logger,
      );
    } catch (err) {
      metrics?.close();
      throw err;
    }
    if (metrics !== undefined) metrics.control = control;
    logger.info({ socket: control.path }, 'control socket listening');
  }
  return {
    metricsRegistry: metrics?.registry,
    controlSocketPath: control?.path,
    async close() {
      metrics?.close();
      await control?.close();
    },
  };
}

/** Throws TypeError/RangeError for bad options (called by the server's constructor, before any system call). */
export function checkOperationsOptions(options: OperationsOptions): void {
  const { control, metrics } = options;
  if (metrics !== undefined && typeof metrics !== 'boolean') throw new TypeError('metrics must be a boolean');
  if (control === undefined || typeof control === 'boolean') return;
  if (typeof control !== 'object' || control === null) throw new TypeError('control must be a boolean or an object');
  resolveControlLimits(control);
  if (control.mode !== undefined && (!Number.isInteger(control.mode) || control.mode < 0 || control.mode > 0o777)) {
    throw new RangeError('control.mode must be permission bits (0..0o777)');
  }
}
