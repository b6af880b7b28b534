/**
 * Starts a worker_threads Worker on a module given by URL — compiled JavaScript as published, or TypeScript
 * when running from the sources (tests, tsx): Node 20 workers do not inherit tsx's module hooks from
 * `--import tsx`, so such a worker registers tsx (a development dependency) itself before importing the module.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function moduleWorker(moduleUrl: URL, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  if (!moduleUrl.pathname.endsWith('.ts')) return new Worker(moduleUrl, options);
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(moduleUrl.href)}); })`;
  return new Worker(boot, { ...options, eval: true });
}
