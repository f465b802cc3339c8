// Many stream clients at once for the cluster tests, cheap enough that 100 of
// them and the server share a 2-core machine with three brokers: a raw SSE
// reader (no parser library, no per-event objects kept) that resumes with
// Last-Event-ID like EventSource, the real `eventsource` client for a few, and
// one checker per client that judges every message as it arrives (exactly
// once, in order per partition) and feeds a latency histogram.
import http from 'node:http';
import { EventSource } from 'eventsource';

/** A latency histogram in 1 ms buckets (everything past 60 s in the last one). */
export class LatencyHistogram {
  readonly #buckets = new Uint32Array(60_001);
  count = 0;
  max = 0;

  add(ms: number): void {
    const b = Math.min(60_000, Math.max(0, Math.round(ms)));
    this.#buckets[b] = (this.#buckets[b] ?? 0) + 1;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /** The q-quantile in ms (0 when empty). */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let b = 0; b < this.#buckets.length; b++) {
      seen += this.#buckets[b] ?? 0;
      if (seen >= rank) return b;
    }
    return 60_000;
  }
}

/** What the producer writes into every message: partition, sequence number, produce time, test phase. */
export interface Payload {
  p: number;
  n: number;
  t: number;
  ph: number;
}

// The producer writes the payload's keys first and in this order, and the
// bridge appends `_kafka` after them, so a regex reads them without JSON.parse.
const PAYLOAD = /^\{"p":(\d+),"n":(\d+),"t":(\d+),"ph":(\d+)/;

/** Reads the payload fields from an event's data. */
export function parsePayload(data: string): Payload | undefined {
  const m = PAYLOAD.exec(data);
  if (!m) return undefined;
  return { p: Number(m[1]), n: Number(m[2]), t: Number(m[3]), ph: Number(m[4]) };
}

/** Judges one client's messages as they arrive: sequence numbers per partition must go up by one. */
export class SequenceCheck {
  readonly next: number[];
  lost = 0;
  duplicated = 0;
  received = 0;
  unreadable = 0;
  /** Latency histograms by phase, or undefined to skip latency (replaying clients). */
  readonly #latency: LatencyHistogram[] | undefined;
  /** The partitions this client reads (all when undefined). */
  readonly #only: ReadonlySet<number> | undefined;
  /** The longest time between two messages, in ms, and when it ended. */
  longestGapMs = 0;
  #lastAt = 0;

  constructor(startAt: readonly number[], latency?: LatencyHistogram[], only?: readonly number[]) {
    this.next = [...startAt];
    this.#latency = latency;
    this.#only = only ? new Set(only) : undefined;
  }

  add(data: string, receivedAt: number): void {
    const m = parsePayload(data);
    if (!m) {
      this.unreadable++;
      return;
    }
    this.received++;
    if (this.#lastAt > 0 && receivedAt - this.#lastAt > this.longestGapMs)
      this.longestGapMs = receivedAt - this.#lastAt;
    this.#lastAt = receivedAt;
    const expected = this.next[m.p] ?? 0;
    if (m.n < expected) {
      this.duplicated++;
      return;
    }
    if (m.n > expected) this.lost += m.n - expected;
    this.next[m.p] = m.n + 1;
    this.#latency?.[m.ph]?.add(receivedAt - m.t);
  }

  /** Whether every partition has reached `counts` (messages 0 … count - 1). */
  reached(counts: readonly number[]): boolean {
    return counts.every((c, p) => this.#only?.has(p) === false || (this.next[p] ?? 0) >= c);
  }

  /** Messages of `counts` this client never got, gaps included. */
  missing(counts: readonly number[]): number {
    return (
      this.lost +
      counts.reduce((sum, c, p) => sum + (this.#only?.has(p) === false ? 0 : Math.max(0, c - (this.next[p] ?? 0))), 0)
    );
  }
}

/** What every test client exposes. */
export interface ClusterClient {
  readonly name: string;
  readonly check: SequenceCheck;
  /** Connections made, the first included. */
  connections(): number;
  /** Data of every `event: error` frame received. */
  readonly errorEvents: string[];
  /** Statuses other than 200, with the time they came. */
  readonly refusals: number[];
  /** Whether the client's connection is open now. */
  connected(): boolean;
  close(): void;
}

/** A raw SSE reader: http.get, split on blank lines, resume with Last-Event-ID after every end. */
export class RawSseClient implements ClusterClient {
  readonly name: string;
  readonly check: SequenceCheck;
  readonly errorEvents: string[] = [];
  readonly refusals: number[] = [];
  #url: string;
  #lastId: string | undefined;
  #retryMs = 1000;
  #connections = 0;
  #open = false;
  #closed = false;
  #req: http.ClientRequest | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Events per 100 ms slot before the reader pauses (a slow replaying client), or Infinity. */
  #perSlot: number;
  #slotStart = 0;
  #slotCount = 0;

  constructor(name: string, url: string, check: SequenceCheck, maxEventsPerSecond = Number.POSITIVE_INFINITY) {
    this.name = name;
    this.#url = url;
    this.check = check;
    this.#perSlot = maxEventsPerSecond / 10;
    this.#connect();
  }

  connections(): number {
    return this.#connections;
  }

  connected(): boolean {
    return this.#open;
  }

  #connect(): void {
    if (this.#closed) return;
    this.#connections++;
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (this.#lastId !== undefined) headers['Last-Event-ID'] = this.#lastId;
    const req = http.get(this.#url, { headers, agent: false });
    this.#req = req;
    let again = false;
    const reconnect = () => {
      this.#open = false;
      if (again || this.#closed) return;
      again = true;
      this.#timer = setTimeout(() => this.#connect(), this.#retryMs);
    };
    req.on('error', reconnect);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        this.refusals.push(res.statusCode ?? 0);
        res.resume();
        res.on('end', reconnect);
        return;
      }
      this.#open = true;
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        const now = Date.now();
        if (now - this.#slotStart >= 100) {
          this.#slotStart = now;
          this.#slotCount = 0;
        }
        buf += chunk;
        let start = 0;
        for (;;) {
          const end = buf.indexOf('\n\n', start);
          if (end < 0) break;
          this.#block(buf.slice(start, end), now);
          start = end + 2;
        }
        buf = start === 0 ? buf : buf.slice(start);
        this.#throttle(res, now);
      });
      res.on('end', reconnect);
      res.on('close', reconnect);
      res.on('error', reconnect);
    });
  }

  #block(block: string, now: number): void {
    let event = 'message';
    let id: string | undefined;
    let data: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith('data: ')) data = data === undefined ? line.slice(6) : `${data}\n${line.slice(6)}`;
      else if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('retry: ')) this.#retryMs = Number(line.slice(7));
    }
    if (data === undefined) return;
    if (event === 'message') {
      this.#slotCount++;
      this.check.add(data, now);
      if (id !== undefined) this.#lastId = id;
    } else if (event === 'error') this.errorEvents.push(data);
  }

  /** Pauses the response for the rest of the 100 ms slot once the slot's events are used up. */
  #throttle(res: http.IncomingMessage, now: number): void {
    if (this.#slotCount < this.#perSlot) return;
    res.pause();
    setTimeout(() => res.resume(), Math.max(1, 100 - (now - this.#slotStart)));
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#req?.destroy();
  }
}

/** The real `eventsource` client, counting its connection attempts. */
export class EventSourceClient implements ClusterClient {
  readonly name: string;
  readonly check: SequenceCheck;
  readonly errorEvents: string[] = [];
  readonly refusals: number[] = [];
  readonly es: EventSource;
  #connections = 0;
  #open = false;

  constructor(name: string, url: string, check: SequenceCheck) {
    this.name = name;
    this.check = check;
    this.es = new EventSource(url, {
      fetch: async (input, init) => {
        this.#connections++;
        const res = await fetch(input, init);
        if (res.status !== 200) this.refusals.push(res.status);
        return res;
      },
    });
    this.es.addEventListener('open', () => {
      this.#open = true;
    });
    this.es.addEventListener('message', (e) => this.check.add(e.data, Date.now()));
    this.es.addEventListener('error', (e) => {
      this.#open = false;
      const data = (e as unknown as { data?: string }).data;
      if (typeof data === 'string') this.errorEvents.push(data);
    });
  }

  connections(): number {
    return this.#connections;
  }

  connected(): boolean {
    return this.#open;
  }

  close(): void {
    this.es.close();
  }
}
