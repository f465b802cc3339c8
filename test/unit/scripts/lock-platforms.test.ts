// The lock-file guard: which per-platform entries it finds missing, and what it rebuilds.
import assert from 'node:assert/strict';
import { missingEntries, platformOf } from '../../../scripts/lock-platforms.mjs';

describe('scripts/lock-platforms', () => {
  it('reads os, cpu and libc from a per-platform package name', () => {
    assert.deepEqual(platformOf('@biomejs/cli-darwin-arm64'), { os: ['darwin'], cpu: ['arm64'] });
    assert.deepEqual(platformOf('@biomejs/cli-linux-x64'), { os: ['linux'], cpu: ['x64'], libc: ['glibc'] });
    assert.deepEqual(platformOf('@biomejs/cli-linux-arm64-musl'), { os: ['linux'], cpu: ['arm64'], libc: ['musl'] });
    assert.deepEqual(platformOf('@biomejs/cli-win32-x64'), { os: ['win32'], cpu: ['x64'] });
    assert.equal(platformOf('@biomejs/biome'), undefined);
  });

  it('names every optional platform package of a guarded package that the lock lacks', () => {
    const lock = {
      packages: {
        '': { name: 'x' },
        'node_modules/@biomejs/biome': {
          version: '2.6.8',
          dev: true,
          optionalDependencies: { '@biomejs/cli-linux-x64': '2.6.8', '@biomejs/cli-darwin-arm64': '2.6.8' },
        },
        'node_modules/@biomejs/cli-linux-x64': { version: '2.6.8' },
        // Not guarded: its missing platforms are not reported.
        'node_modules/esbuild': { optionalDependencies: { '@esbuild/aix-ppc64': '0.1.0' } },
      },
    };
    const missing = missingEntries(lock) as { key: string; version: string }[];
    assert.deepEqual(
      missing.map((m) => [m.key, m.version]),
      [['node_modules/@biomejs/cli-darwin-arm64', '2.6.8']],
    );
  });

  it('finds nothing missing in the committed package-lock.json', async () => {
    const { readFile } = await import('node:fs/promises');
    const lock = JSON.parse(await readFile(new URL('../../../package-lock.json', import.meta.url), 'utf8'));
    assert.deepEqual(missingEntries(lock), []);
  });
});
