// Install hygiene: `npm ci` warns (EBADENGINE) for every installed package whose
// `engines.node` refuses the running Node. The lock file says what gets
// installed; this checks each entry against the Node versions the project
// supports, so a dependency bump that drops one of them fails here, not on a
// user's machine.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// semver is installed with npm itself and by node-gyp (a dependency of node-rdkafka's build).
const semver = createRequire(import.meta.url)('semver') as {
  subset(sub: string, dom: string): boolean;
  satisfies(version: string, range: string): boolean;
};

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { engines?: { node?: string } | string[] }>;
};

/**
 * The Node versions `npm ci` must install on without an engine warning: every
 * 20.x from the declared floor, and the LTS lines from 22.12 on. (Node 21 and
 * 22.0–22.11 are excluded: node-gyp 11, which builds node-rdkafka and re2,
 * declares `^20.17.0 || >=22.9.0`, and 22 became LTS at 22.11.)
 */
const SUPPORTED = '^20.19.0 || >=22.12.0';

/** Each installed package's `engines.node`, keyed by its lock-file path. */
function enginesOfLock(): [string, string][] {
  const out: [string, string][] = [];
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '') continue;
    // Some old packages write engines as an array of strings; none of ours does, but read it right if one does.
    const engines = entry.engines;
    const node = Array.isArray(engines) ? engines.find((e) => e.startsWith('node '))?.slice(5) : engines?.node;
    if (node !== undefined) out.push([key, node]);
  }
  return out;
}

describe('engines (npm ci without EBADENGINE warnings)', () => {
  it('declares a floor that the supported versions stay within', () => {
    assert.equal(pkg.engines.node, '>=20.19.0');
    assert.ok(semver.subset(SUPPORTED, pkg.engines.node));
  });

  it('installs only packages whose engines.node admits every supported Node version', () => {
    const entries = enginesOfLock();
    assert.ok(entries.length > 50, `read ${entries.length} engines from the lock file`);
    const refusing = entries.filter(([, range]) => !semver.subset(SUPPORTED, range));
    assert.deepEqual(
      refusing.map(([key, range]) => `${key.replace(/^node_modules\//, '')}: ${range}`),
      [],
      `these packages would warn on some Node in ${SUPPORTED}`,
    );
  });

  it('admits the Node running this test', () => {
    if (!semver.satisfies(process.version, SUPPORTED)) return;
    const refusing = enginesOfLock().filter(([, range]) => !semver.satisfies(process.version, range));
    assert.deepEqual(refusing, []);
  });
});
