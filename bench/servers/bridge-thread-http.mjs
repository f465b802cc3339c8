// The HTTP side of the bridge@threads contender, run in a worker thread by
// bench/servers/bridge.mjs (BENCH_THREADS=1): the same routes as every
// contender (common-http.mjs), each request streamed through the stream host
// on the main thread, which reads Kafka with the bridge's options.
import { workerData } from 'node:worker_threads';
import { connectStreamHost } from '../../dist/thread.js';
import { serve } from './common-http.mjs';

const stream = connectStreamHost(workerData.port);
serve('bridge', (req, res, assignments, atTimestamp) => void stream(req, res, assignments, atTimestamp));
