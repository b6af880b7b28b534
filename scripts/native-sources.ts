/**
 * What a prebuilt addon is built from, as one hash: the prebuild script records it in prebuilds/manifest.json
 * and test/package/prebuilds.test.ts recomputes it, so committed prebuilds that no longer match native/ fail
 * the tests instead of shipping stale code.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** The platforms prebuilds are made for, and the Node majors each must cover. */
export const PREBUILD_PLATFORM = 'linux-x64';
export const PREBUILD_MAJORS = [20, 22, 24, 26] as const;

/** Shape of prebuilds/manifest.json. */
export interface PrebuildManifest {
  /** {@link nativeSourceHash} of the sources every file below was built from. */
  sourceHash: string;
  /** The files that went into the hash, relative to the package root. */
  sources: string[];
  builds: Array<{
    /** Relative to the package root, e.g. `prebuilds/linux-x64/node.abi127.glibc.node`. */
    file: string;
    /** The exact Node version whose headers it was compiled against. */
    node: string;
    /** NODE_MODULE_VERSION (`process.versions.modules`) it loads under. */
    abi: string;
    /** sha256 of the file. */
    sha256: string;
    /** `native.sharedBufferBackend` when loaded by that Node version (V8 or Node-API). */
    backend: string;
  }>;
}

/**
 * The files a release build compiles: binding.gyp and every C++ source and header in native/ (the ASAN build
 * files are not part of a prebuild), plus node-addon-api's version, whose headers are compiled in.
 */
export function nativeSourceFiles(root = repoRoot): string[] {
  const native = readdirSync(join(root, 'native'))
    .filter((name) => /\.(cc|h)$/.test(name))
    .sort()
    .map((name) => `native/${name}`);
  return ['binding.gyp', ...native];
}

export function nativeSourceHash(root = repoRoot): string {
  const hash = createHash('sha256');
  for (const file of nativeSourceFiles(root)) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(root, file)));
    hash.update('\0');
  }
  const addonApi = JSON.parse(readFileSync(join(root, 'node_modules', 'node-addon-api', 'package.json'), 'utf8')) as {
    version: string;
  };
  hash.update(`node-addon-api@${addonApi.version}`);
  return hash.digest('hex');
}

export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The node-gyp-build file name for a NODE_MODULE_VERSION on glibc (prebuildify's naming). */
export function prebuildFile(abi: string): string {
  return `prebuilds/${PREBUILD_PLATFORM}/node.abi${abi}.glibc.node`;
}
