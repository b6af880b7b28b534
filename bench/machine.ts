/**
 * The facts of the machine a result comes from: CPU model (/proc/cpuinfo), cores, kernel, Node version and
 * the load average, read at the start and at the end of a run.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';

export interface MachineFacts {
  cpu: string;
  cores: number;
  kernel: string;
  node: string;
  memoryGiB: number;
}

export function machineFacts(): MachineFacts {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) cpu = line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // keep os.cpus()'s answer (not Linux, or /proc hidden)
  }
  return {
    cpu,
    cores: availableParallelism(),
    kernel: release(),
    node: process.version,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

/** 1, 5 and 15 minute load averages. */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = loadavg();
  return [a!, b!, c!];
}
