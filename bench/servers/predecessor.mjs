#!/usr/bin/env node
// The predecessor: Wikimedia's KafkaSSE (npm kafka-sse 0.4.2, installed in
// bench/node_modules with node-rdkafka overridden to 3.6.1), called as its
// README shows. Its only non-default option here is a bunyan logger at level
// `warn`: without one it logs at `debug` with source locations to stdout,
// which no production deployment does and which would dominate its cost.
import { createRequire } from 'node:module';
import { BROKERS } from '../lib/common.mjs';
import { serve } from './common-http.mjs';

const require = createRequire(import.meta.url);
const kafkaSse = require('kafka-sse');
const bunyan = require('bunyan');

const logger = bunyan.createLogger({ name: 'kafka-sse', level: 'warn', stream: process.stderr });
const kafkaConfig = { 'metadata.broker.list': BROKERS, ...JSON.parse(process.env.BENCH_KAFKA_CONFIG || '{}') };

serve('predecessor', (req, res, assignments, atTimestamp) => {
  void kafkaSse(req, res, assignments, { kafkaConfig, logger }, atTimestamp);
});
