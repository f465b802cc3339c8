// The Fetch adapter driven directly, no broker: the request as the library
// reads it, the Response settled at writeHead, backpressure through the body's
// pull (the library's writer pauses when nobody reads), cancel, and the
// answers kafkaSseResponse() gives before touching Kafka.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino from 'pino';
import { kafkaSseResponse, StreamLimiter } from '../../index.ts';
import { InvalidAssignmentError } from '../../lib/errors.ts';
import { FETCH_HIGH_WATER_BYTES, FetchRequestAdapter, FetchResponseAdapter } from '../../lib/fetch-adapter.ts';
import { writeJsonError } from '../../lib/http-response.ts';
import { lastEventIdOf, requestIdOf, streamModeOf } from '../../lib/request.ts';
import { HIGH_WATER_BYTES, StreamWriter } from '../../lib/writer.ts';

const asRes = (res: FetchResponseAdapter) => res as unknown as ServerResponse;

function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function readAll(response: Response): Promise<string> {
  return new TextDecoder().decode(await response.arrayBuffer());
}

describe('Fetch adapter (lib/fetch-adapter.ts)', () => {
  it('gives the request as Node would: lower-cased headers, path and query, method, remote address', () => {
    const request = new Request('https://example.test/v2/stream/a,b?lastEventId=%5B%5D&x=1', {
      headers: { Accept: 'application/x-ndjson', 'X-Request-ID': 'req-1', 'Last-Event-ID': '[{"topic":"a"}]' },
    });
    const req = new FetchRequestAdapter(request, '192.0.2.7');
    assert.equal(req.url, '/v2/stream/a,b?lastEventId=%5B%5D&x=1');
    assert.equal(req.method, 'GET');
    assert.equal(req.headers.accept, 'application/x-ndjson');
    assert.equal(req.socket.remoteAddress, '192.0.2.7');
    const nodeReq = req as unknown as IncomingMessage;
    assert.equal(streamModeOf(nodeReq, false), 'ndjson');
    assert.equal(lastEventIdOf(nodeReq), '[{"topic":"a"}]');
    assert.equal(requestIdOf(nodeReq), 'req-1');
    assert.equal(new FetchRequestAdapter(new Request('http://x/')).socket.remoteAddress, undefined);
  });

  it('settles the Response at writeHead, without connection-specific headers, and streams what is written', async () => {
    const res = new FetchResponseAdapter();
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      Connection: 'keep-alive',
      'Transfer-Encoding': 'chunked',
    });
    const response = await res.response;
    assert.equal(res.headersSent, true);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    assert.equal(response.headers.has('connection'), false);
    assert.equal(response.headers.has('transfer-encoding'), false);
    const events: string[] = [];
    res.on('finish', () => events.push('finish'));
    res.on('close', () => events.push('close'));
    assert.equal(res.write(':ok\n\n'), true);
    res.write('data: 1\n\n');
    res.end('data: 2\n\n');
    assert.equal(res.writableEnded, true);
    assert.equal(await readAll(response), ':ok\n\ndata: 1\n\ndata: 2\n\n');
    await nextTick();
    assert.equal(res.writableFinished, true);
    assert.deepEqual(events, ['finish', 'close']);
  });

  it("gives the body's reader its own copy of bytes written (a frame may be shared by many streams)", async () => {
    const res = new FetchResponseAdapter();
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    const response = await res.response;
    const shared = Buffer.from('data: shared\n\n');
    res.write(shared.subarray(0, 6));
    res.write(shared);
    shared.fill(0x21);
    res.end();
    assert.equal(await readAll(response), 'data: data: shared\n\n');
  });

  it('hands what is written between cork() and uncork() to a waiting reader as one chunk, at the uncork', async () => {
    const res = new FetchResponseAdapter();
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    const reader = (await res.response).body?.getReader();
    assert.ok(reader);
    const first = reader.read();
    await nextTick();
    res.cork();
    res.write('a');
    res.write('b');
    let settled = false;
    void first.then(() => {
      settled = true;
    });
    await nextTick();
    assert.equal(settled, false, 'nothing reaches the reader while corked');
    res.uncork();
    const { value } = await first;
    assert.equal(Buffer.from(value as Uint8Array).toString('utf8'), 'ab');
    await reader.cancel();
  });

  it('answers a JSON error as writeJsonError writes it (status, Content-Length, body)', async () => {
    const res = new FetchResponseAdapter();
    writeJsonError(asRes(res), new InvalidAssignmentError('bad').toJSON(), { 'Access-Control-Allow-Origin': '*' });
    const response = await res.response;
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('access-control-allow-origin'), '*');
    const text = await readAll(response);
    assert.equal(response.headers.get('content-length'), String(Buffer.byteLength(text)));
    assert.equal((JSON.parse(text) as { code: string }).code, 'INVALID_ASSIGNMENT');
  });

  it('counts what the reader has not taken: write() is false past the mark, drain comes when it is read', async () => {
    const res = new FetchResponseAdapter();
    res.writeHead(200, {});
    const reader = ((await res.response).body as ReadableStream<Uint8Array>).getReader();
    const chunk = 'x'.repeat(4096);
    let writes = 0;
    while (res.write(chunk)) writes++;
    assert.equal(writes, FETCH_HIGH_WATER_BYTES / 4096 - 1);
    assert.equal(res.writableLength, FETCH_HIGH_WATER_BYTES);
    // Nothing is taken while nobody reads.
    await nextTick();
    assert.equal(res.writableLength, FETCH_HIGH_WATER_BYTES);
    let drained = 0;
    res.on('drain', () => drained++);
    const { value } = await reader.read();
    assert.equal(value?.byteLength, FETCH_HIGH_WATER_BYTES, 'one read takes everything queued');
    assert.equal(res.writableLength, 0);
    assert.equal(drained, 1);
    // A read waiting for data gets the next write at once.
    const pending = reader.read();
    assert.equal(res.write('y'), true);
    assert.equal(new TextDecoder().decode((await pending).value), 'y');
    assert.equal(res.writableLength, 0);
  });

  it("makes the library's writer pause when nobody reads, and resume when the reader catches up", async () => {
    const res = new FetchResponseAdapter();
    let full = 0;
    let drained = 0;
    const writer = new StreamWriter(asRes(res), 'sse', {
      heartbeatMs: null,
      onFull: () => full++,
      onDrain: () => drained++,
    });
    writer.open({}, null);
    const response = await res.response;
    assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const data = JSON.stringify({ padding: 'x'.repeat(1000) });
    let offset = 0;
    while (!writer.full && offset < 10_000) {
      for (let i = 0; i < 100; i++) writer.message(data, `[{"offset":${offset++}}]`);
      writer.flush();
    }
    assert.equal(writer.full, true, 'the writer reports a full buffer');
    assert.equal(full, 1);
    assert.ok(res.writableLength >= HIGH_WATER_BYTES, `${res.writableLength} bytes queued`);
    assert.ok(res.writableLength < HIGH_WATER_BYTES + 300 * 1024, 'bounded by one batch past the mark');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    assert.equal(writer.full, false);
    assert.equal(drained, 1);
    writer.end();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    assert.equal(rest, '', 'everything was taken by the first read');
  });

  it("releases on the body's cancel(): 'close' once, destroyed, later writes dropped", async () => {
    const res = new FetchResponseAdapter();
    res.writeHead(200, {});
    res.write('data: 1\n\n');
    let closes = 0;
    res.on('close', () => closes++);
    await ((await res.response).body as ReadableStream<Uint8Array>).cancel();
    assert.equal(res.destroyed, true);
    assert.equal(res.writableLength, 0);
    assert.equal(res.write('data: 2\n\n'), false);
    res.destroy();
    await nextTick();
    assert.equal(closes, 1);
  });

  it("emits 'close' after destroy() on a later tick, so a listener attached just after hears it", async () => {
    const res = new FetchResponseAdapter();
    res.destroy();
    let closed = false;
    res.once('close', () => {
      closed = true;
    });
    await nextTick();
    assert.equal(closed, true);
  });

  it('kafkaSseResponse answers invalid options 500 and a refusing limiter 429, before touching Kafka', async () => {
    const invalid = await kafkaSseResponse(new Request('http://x/s'), 'a', {
      heartbeatMs: -1,
      logger: pino({ level: 'silent' }),
    });
    assert.equal(invalid.status, 500);
    assert.equal(((await invalid.json()) as { code: string }).code, 'CONFIGURATION');

    for (const [bad, name] of [
      [{ remoteAddress: 42 }, 'options.remoteAddress'],
      [{ limiter: {} }, 'options.limiter'],
      [{ onSettled: 'soon' }, 'options.onSettled'],
    ] as const) {
      const answer = await kafkaSseResponse(new Request('http://x/s'), 'a', {
        ...(bad as object),
        logger: pino({ level: 'silent' }),
      });
      assert.equal(answer.status, 500);
      const body = (await answer.json()) as { code: string; message: string };
      assert.equal(body.code, 'CONFIGURATION');
      assert.match(body.message, new RegExp(name.replace('.', '\\.')));
    }

    const limiter = new StreamLimiter({ maxStreamsPerKey: 1, retryAfterSeconds: 7 });
    const held = limiter.tryAcquire(new FetchRequestAdapter(new Request('http://x/'), '192.0.2.1') as never);
    assert.equal(held.ok, true);
    const refused = await kafkaSseResponse(new Request('http://x/s'), 'a', { limiter, remoteAddress: '192.0.2.1' });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '7');
    assert.equal(((await refused.json()) as { code: string }).code, 'TOO_MANY_STREAMS');
  });
});
