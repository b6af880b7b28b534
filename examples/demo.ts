/**
 * `npm start`: runs the server program and the client program as two processes, and shows what is left in
 * /dev/shm afterwards (nothing).
 */
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const execArgv = ['--import', 'tsx'];
const shmx = () => readdirSync('/dev/shm').filter((n) => n.startsWith('shmx.') && n.includes('.pricing.'));

const server = fork(here('./server.ts'), { execArgv, stdio: 'inherit' });
await new Promise<void>((resolve, reject) => {
  server.once('message', () => resolve());
  server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
});
const client = fork(here('./client.ts'), { execArgv, stdio: 'inherit' });
const code = await new Promise<number | null>((resolve) => client.once('exit', resolve));
console.log(`[demo] objects while the server runs (its app arena): ${shmx().length}`);
server.kill('SIGTERM');
await new Promise((resolve) => server.once('exit', resolve));
const left = shmx();
console.log(`[demo] objects left after the server stopped: ${left.length}${left.length ? `: ${left.join(', ')}` : ''}`);
process.exitCode = code === 0 && left.length === 0 ? 0 : 1;
