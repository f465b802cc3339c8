// Reading a prom-client registry the way Prometheus would.
import type { Registry } from 'prom-client';

/** The registry's exposition, as sample name (with labels) → value. */
export async function scrape(prom: Registry): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await prom.metrics()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}
