/**
 * The committed prebuilds must be built from the committed native sources: a change under native/ (or to
 * binding.gyp, or a new node-addon-api) without `npm run prebuilds` fails here, before stale binaries ship.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  PREBUILD_MAJORS,
  PREBUILD_PLATFORM,
  fileSha256,
  nativeSourceFiles,
  nativeSourceHash,
  prebuildFile,
  repoRoot,
  type PrebuildManifest,
} from '../../scripts/native-sources.js';

const manifest = JSON.parse(readFileSync(join(repoRoot, 'prebuilds', 'manifest.json'), 'utf8')) as PrebuildManifest;

describe('committed prebuilds', () => {
  it('were built from the native sources as they are now', () => {
    expect(manifest.sources, 'the set of native source files changed: run `npm run prebuilds`').toEqual(nativeSourceFiles());
    expect(manifest.sourceHash, 'native sources changed since the prebuilds were made: run `npm run prebuilds`').toBe(
      nativeSourceHash(),
    );
  });

  it('cover every supported Node major, one file per ABI, each the file the manifest describes', () => {
    expect(manifest.builds.map((b) => Number(b.node.split('.')[0]))).toEqual([...PREBUILD_MAJORS]);
    for (const build of manifest.builds) {
      expect(build.file).toBe(prebuildFile(build.abi));
      expect(existsSync(join(repoRoot, build.file)), build.file).toBe(true);
      expect(fileSha256(join(repoRoot, build.file)), `${build.file} is not the file the manifest was written for`).toBe(
        build.sha256,
      );
    }
    // Nothing else for node-gyp-build to pick up untested.
    const files = readdirSync(join(repoRoot, 'prebuilds', PREBUILD_PLATFORM)).map((n) => `prebuilds/${PREBUILD_PLATFORM}/${n}`);
    expect(files.sort()).toEqual(manifest.builds.map((b) => b.file).sort());
  });

  it('take the Node-API path on the majors whose built-against release exports it, V8 on Node 20', () => {
    const backend = Object.fromEntries(manifest.builds.map((b) => [b.node.split('.')[0], b.backend]));
    expect(backend['20']).toBe('v8');
    for (const major of ['22', '24', '26']) expect(backend[major]).toBe('node-api');
  });
});
