// Sizes of the reliability and hostile-input tests. `npm test` runs them small
// (a few minutes in all); `npm run soak` (scripts/soak.mjs) sets SOAK=1 for the
// long versions, and any size can be set on its own: SOAK_<NAME>=<number>.
// Tests record their measured figures here; the soak script prints them.
import fs from 'node:fs';

/** True under `npm run soak`. */
export const SOAK = process.env.SOAK === '1';

/**
 * A size: `SOAK_<NAME>` when set, else the soak or the `npm test` value.
 * Names are UPPER_SNAKE, e.g. knob('CHURN_CYCLES', 300, 3000).
 */
export function knob(name: string, testValue: number, soakValue: number): number {
  const raw = process.env[`SOAK_${name}`];
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`SOAK_${name} must be a non-negative number, got ${raw}`);
    return n;
  }
  return SOAK ? soakValue : testValue;
}

/** A figure for the soak table: `section` names the test, `values` its measurements. */
export function recordFigures(section: string, values: Record<string, number | string | boolean>): void {
  const file = process.env.RELIABILITY_FIGURES_FILE;
  if (!file) return;
  fs.appendFileSync(file, `${JSON.stringify({ section, at: new Date().toISOString(), ...values })}\n`);
}
