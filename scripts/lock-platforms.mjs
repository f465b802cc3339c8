#!/usr/bin/env node
// Guards package-lock.json against the platform-entry trap.
//
//   node scripts/lock-platforms.mjs          check (exit 1, naming what is missing)
//   node scripts/lock-platforms.mjs --fix    add the missing entries, then check
//
// Why: packages such as @biomejs/biome ship their binary as one optional
// package per platform (@biomejs/cli-darwin-arm64, …-win32-x64, …). The
// registry reachable from our machines serves only the Linux builds, so an
// `npm install` that rewrites the lock leaves the other platforms out; `npm ci`
// then finds the lock out of step with package.json and refuses to install,
// on every machine. `npm test` runs the check first so this fails in seconds,
// with the fix named, instead of at CI's `npm ci`.
//
// A missing entry is rebuilt from its name (os, cpu and libc are spelled in
// it) and from the flags of the package that lists it; npm fills in the
// tarball details the first time it installs one on its own platform.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LOCK = path.join(ROOT, 'package-lock.json');

/** Packages whose optional per-platform binaries must all be in the lock. */
const GUARDED = [/^@biomejs\/biome$/];

const OS = ['android', 'darwin', 'linux', 'win32', 'freebsd'];
const CPU = ['arm64', 'x64', 'ia32', 'arm'];

/** os, cpu and libc of a per-platform package, from a name like `@scope/cli-linux-arm64-musl`. */
export function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.find((p) => OS.includes(p));
  const cpu = parts.find((p) => CPU.includes(p));
  if (!os || !cpu) return undefined;
  const platform = { os: [os], cpu: [cpu] };
  if (os === 'linux') platform.libc = [parts.includes('musl') ? 'musl' : 'glibc'];
  return platform;
}

/** The guarded packages' optional dependencies that the lock has no entry for. */
export function missingEntries(lock) {
  const packages = lock.packages ?? {};
  const missing = [];
  for (const [key, entry] of Object.entries(packages)) {
    const name = key.replace(/^.*node_modules\//, '');
    if (!GUARDED.some((re) => re.test(name))) continue;
    for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
      const depKey = `${key.slice(0, key.length - name.length)}${dep}`;
      if (!packages[depKey]) missing.push({ key: depKey, name: dep, version, parent: entry });
    }
  }
  return missing;
}

function entryFor(m) {
  const platform = platformOf(m.name);
  if (!platform) throw new Error(`cannot tell the platform of ${m.name}; add its lock entry by hand`);
  const entry = { version: m.version, cpu: platform.cpu };
  if (m.parent.dev) entry.dev = true;
  if (platform.libc) entry.libc = platform.libc;
  if (m.parent.license) entry.license = m.parent.license;
  entry.optional = true;
  entry.os = platform.os;
  if (m.parent.engines) entry.engines = m.parent.engines;
  return entry;
}

/** Inserts entries keeping the lock's key order (npm sorts package keys). */
function withEntries(packages, added) {
  const all = { ...packages, ...added };
  const [root, ...rest] = Object.keys(all);
  rest.sort((a, b) => a.localeCompare(b, 'en'));
  const out = {};
  for (const k of [root, ...rest]) out[k] = all[k];
  return out;
}

function main() {
  const fix = process.argv.includes('--fix');
  const text = fs.readFileSync(LOCK, 'utf8');
  const lock = JSON.parse(text);
  let missing = missingEntries(lock);
  if (missing.length > 0 && fix) {
    const added = Object.fromEntries(missing.map((m) => [m.key, entryFor(m)]));
    lock.packages = withEntries(lock.packages, added);
    fs.writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
    console.log(`lock-platforms: added ${missing.length} entries: ${missing.map((m) => m.name).join(', ')}`);
    missing = missingEntries(lock);
  }
  if (missing.length > 0) {
    console.error(
      `package-lock.json lacks ${missing.length} per-platform package entries (${missing
        .map((m) => `${m.name}@${m.version}`)
        .join(', ')}).\n` +
        'An `npm install` here rewrote the lock with only the builds this registry serves, and `npm ci` ' +
        'refuses such a lock. Run `npm run lock:fix` and commit package-lock.json.',
    );
    process.exit(1);
  }
  if (!fix) return;
  console.log('lock-platforms: package-lock.json has every platform entry');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
