// The real `eventsource` client (what Node and browser users run), wrapped to
// record what a test needs to judge a stream across reconnects: every message,
// every connection attempt with the Last-Event-ID it sent, and the answers.
import { EventSource } from 'eventsource';

export interface TrackedMessage {
  data: string;
  lastEventId: string;
}

export interface Connection {
  /** The Last-Event-ID header sent on this attempt, or null on the first. */
  lastEventId: string | null;
  status: number | undefined;
  at: number;
}

/** An EventSource that records messages, named events and connection attempts. */
export class TrackedEventSource {
  readonly es: EventSource;
  readonly messages: TrackedMessage[] = [];
  /** Server-sent `event: error` frames (data is the JSON error). */
  readonly errorEvents: string[] = [];
  readonly connections: Connection[] = [];
  #listeners = new Set<() => void>();

  /** `headers` are added to every attempt (EventSource itself cannot send custom headers). */
  constructor(url: string, headers: Record<string, string> = {}) {
    this.es = new EventSource(url, {
      fetch: async (input, init) => {
        Object.assign(init.headers, headers);
        const conn: Connection = {
          lastEventId: init.headers['Last-Event-ID'] ?? null,
          status: undefined,
          at: Date.now(),
        };
        this.connections.push(conn);
        const res = await fetch(input, init);
        conn.status = res.status;
        return res;
      },
    });
    this.es.addEventListener('message', (e) => {
      this.messages.push({ data: e.data, lastEventId: e.lastEventId });
      this.#notify();
    });
    // Both the connection's own errors (no data) and the server's error events arrive here.
    this.es.addEventListener('error', (e) => {
      const data = (e as unknown as { data?: string }).data;
      if (typeof data === 'string') this.errorEvents.push(data);
      this.#notify();
    });
  }

  #notify(): void {
    for (const l of this.#listeners) l();
  }

  /** Resolves once `predicate` holds; rejects after `timeoutMs` naming `what`. */
  until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (predicate()) return resolve();
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.#listeners.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; ${this.messages.length} messages, ${this.connections.length} connections, readyState ${this.es.readyState}`,
          ),
        );
      }, timeoutMs);
      this.#listeners.add(check);
    });
  }

  close(): void {
    this.es.close();
    this.#listeners.clear();
  }
}
