/**
 * `shmx top` in a pseudo-terminal (util-linux `script`): it refreshes the screen with the live sessions and
 * the rates of their channels, and quits on q.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/child.js';
import { liveServer, type LiveServer } from './helpers.js';

/** Runs `shmx top …` under `script` (a pty for its stdin and stdout); `onOutput` may type keys. */
function topInPty(args: string[], onOutput: (all: string, type: (keys: string) => void) => void = () => {}) {
  const command = [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'top', ...args].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  let all = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    all += text;
    onOutput(all, (keys) => child.stdin.write(keys));
  });
  return new Promise<{ code: number | null; output: string }>((resolve) => child.once('exit', (code) => resolve({ code, output: all })));
}

const CLEAR = '\x1b[H\x1b[2J';

describe('shmx top', () => {
  let live: LiveServer;
  beforeAll(async () => {
    live = await liveServer({ clients: 2, transports: ['shm', 'socket'] });
  }, 60_000);
  afterAll(async () => {
    await live?.stop();
  });

  it('refreshes a view of sessions and channel rates', async () => {
    const { code, output } = await topInPty([live.serverApp, '--run-dir', live.runDirectory, '--interval', '300', '--count', '4']);
    expect(code).toBe(0);
    const frames = output.split(CLEAR).slice(1);
    expect(frames).toHaveLength(4);
    for (const frame of frames) {
      expect(frame).toContain(`shmx top — ${live.serverApp}`);
      for (const id of live.sessionIds) expect(frame).toContain(id);
    }
    // From the second frame on, every channel has a rate: traffic is flowing.
    const rows = frames[3]!.split(/\r?\n/).filter((l) => /^ +ch \d+/.test(l));
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      const [, , transport, msgIn] = row.trim().split(/ +/);
      expect(['shm', 'socket']).toContain(transport);
      expect(Number.parseFloat(msgIn!)).toBeGreaterThan(0);
    }
  }, 60_000);

  it('quits on q', async () => {
    let typed = false;
    const { code, output } = await topInPty([live.serverApp, '--run-dir', live.runDirectory, '--interval', '200'], (all, type) => {
      if (!typed && all.split(CLEAR).length > 2) {
        typed = true;
        type('q');
      }
    });
    expect(code).toBe(0);
    expect(output.split(CLEAR).length).toBeLessThan(10);
  }, 60_000);
});
