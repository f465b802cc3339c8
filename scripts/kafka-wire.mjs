// A few Kafka protocol requests spoken directly over TCP, so the broker
// launcher can tell "the broker answers metadata" without loading a client
// library, and the test helpers can delete records (which node-rdkafka's
// admin client does not expose). Only the request versions a Kafka 4.x broker
// still accepts are used (KIP-896 removed the oldest ones).
import net from 'node:net';

const API_METADATA = 3;
const API_DELETE_RECORDS = 21;

function encodeString(value) {
  const bytes = Buffer.from(value, 'utf8');
  const out = Buffer.alloc(2 + bytes.length);
  out.writeInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

function int16(v) {
  const b = Buffer.alloc(2);
  b.writeInt16BE(v, 0);
  return b;
}
function int32(v) {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v, 0);
  return b;
}
function int64(v) {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(v), 0);
  return b;
}

/** Sends one request (header v1) and resolves with the response body after the correlation id. */
function roundTrip({ host, port, apiKey, apiVersion, body, timeoutMs = 2000 }) {
  return new Promise((resolve, reject) => {
    const header = Buffer.concat([int16(apiKey), int16(apiVersion), int32(1), encodeString('kafka-sse-bridge-tools')]);
    const payload = Buffer.concat([header, body]);
    const socket = net.connect({ host, port });
    const chunks = [];
    let received = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.end(Buffer.concat([int32(payload.length), payload])));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      received += chunk.length;
      const all = Buffer.concat(chunks, received);
      if (all.length >= 4 && all.length >= 4 + all.readInt32BE(0)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(all.subarray(8, 4 + all.readInt32BE(0)));
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`connection to ${host}:${port} closed before an answer`));
    });
  });
}

/**
 * Asks for cluster metadata (Metadata v4, no topics). Resolves with the number
 * of brokers the cluster reports; rejects when nothing answers.
 */
export async function probeMetadata(host, port, timeoutMs = 2000) {
  // topics: null (int32 -1) is "all topics"; an empty array is "none", which is all we need.
  const body = Buffer.concat([int32(0), Buffer.from([0])]);
  const res = await roundTrip({ host, port, apiKey: API_METADATA, apiVersion: 4, body, timeoutMs });
  // throttle_time_ms int32, then the brokers array length.
  return res.readInt32BE(4);
}

/**
 * Deletes every record before `offset` in one partition (DeleteRecords v1),
 * moving its low watermark. Resolves with the new low watermark.
 */
export async function deleteRecordsBefore({ host, port, topic, partition, offset, timeoutMs = 10000 }) {
  const body = Buffer.concat([
    int32(1),
    encodeString(topic),
    int32(1),
    int32(partition),
    int64(offset),
    int32(timeoutMs),
  ]);
  const res = await roundTrip({
    host,
    port,
    apiKey: API_DELETE_RECORDS,
    apiVersion: 1,
    body,
    timeoutMs: timeoutMs + 2000,
  });
  // throttle int32, topics count int32, name string, partitions count int32, index int32, low_watermark int64, error int16
  let pos = 8;
  const nameLength = res.readInt16BE(pos);
  pos += 2 + nameLength + 4 + 4;
  const low = Number(res.readBigInt64BE(pos));
  const errorCode = res.readInt16BE(pos + 8);
  if (errorCode !== 0)
    throw new Error(`DeleteRecords on ${topic}/${partition} failed with Kafka error code ${errorCode}`);
  return low;
}
