#!/usr/bin/env node
// NOT the library: the floor of live fan-out from Node on this machine, the
// "socket floor" contender of the clients scenario. One Kafka consumer per
// topic, reading from the end; each message's value is sent as it came (no
// JSON validation, no `_kafka`, one fixed id), framed once as one SSE event
// in one HTTP/1.1 chunk, and that one Buffer is written to every client's
// socket with socket.write() after node-rdkafka's turn (several in one
// corked writev), as the bridge schedules its writes. No backpressure beyond dropping a client whose
// socket holds over 4 MiB. What is left is node-rdkafka's hand-over, Node's
// net write and the kernel's loopback TCP: the cost any Node bridge pays per
// delivery before doing anything of its own.
import { serveTopicTails } from './common-http.mjs';
import { consumeFromEnd } from './tail-consumer.mjs';

const MAX_BUFFERED = 4 * 1024 * 1024;

function chunk(frame) {
  const body = Buffer.from(frame, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')]);
}

function openTail(topic) {
  const tail = { sockets: new Set(), pending: [], ready: null };
  // What node-rdkafka handed over in this turn goes out after it, to every socket (as the bridge does).
  const flush = () => {
    const chunks = tail.pending;
    tail.pending = [];
    for (const socket of tail.sockets) {
      if (socket.writableLength > MAX_BUFFERED) {
        tail.sockets.delete(socket);
        socket.destroy();
        continue;
      }
      if (chunks.length === 1) socket.write(chunks[0]);
      else {
        socket.cork();
        for (const c of chunks) socket.write(c);
        socket.uncork();
      }
    }
  };
  tail.ready = consumeFromEnd(topic, 'socket-floor', {}, (m) => {
    if (!m.value) return;
    tail.pending.push(chunk(`id: ${m.offset}\nevent: message\ndata: ${m.value.toString('utf8')}\n\n`));
    if (tail.pending.length === 1) setImmediate(flush);
  });
  return tail;
}

serveTopicTails('socket-floor', openTail, (tail, res) => {
  // The head and a first chunk went through the response; from then on the socket carries ready-made chunks.
  const socket = res.socket;
  tail.sockets.add(socket);
  socket.on('close', () => tail.sockets.delete(socket));
});
