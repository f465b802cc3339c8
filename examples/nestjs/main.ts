// kafkaSse() in a NestJS app (Express platform).
//
//   npx tsx examples/nestjs/main.ts
//   curl -N http://127.0.0.1:3000/v2/stream/my-topic
//
// Decorators need "experimentalDecorators" (and, for constructor injection
// without @Inject, "emitDecoratorMetadata") in tsconfig.json.
import { NestFactory } from '@nestjs/core';
import { StreamModule } from './app.module.ts';

const app = await NestFactory.create(
  StreamModule.forRoot({ kafkaConfig: { 'metadata.broker.list': process.env.KAFKA_BROKERS ?? '127.0.0.1:9092' } }),
  // beforeApplicationShutdown() ends every stream first; then cut what is left (idle
  // keep-alive sockets, connections that never sent a request) instead of waiting for them.
  { forceCloseConnections: true },
);
// On SIGINT/SIGTERM Nest runs beforeApplicationShutdown(): every stream ends, then the server closes.
app.enableShutdownHooks();
const port = Number(process.env.PORT ?? 3000);
await app.listen(port, '127.0.0.1');
console.log(`NestJS: curl -N http://127.0.0.1:${port}/v2/stream/<topic>`);
