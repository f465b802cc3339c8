import 'reflect-metadata';
import { type DynamicModule, Module } from '@nestjs/common';
import type { KafkaSseOptions } from 'kafka-sse-bridge';
import { KAFKA_SSE_OPTIONS, StreamController } from './stream.controller.ts';

/** The streaming endpoints, configured once with kafkaSse() options. */
@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest dynamic module is a class with a static factory, by design
export class StreamModule {
  static forRoot(options: KafkaSseOptions): DynamicModule {
    return {
      module: StreamModule,
      controllers: [StreamController],
      providers: [{ provide: KAFKA_SSE_OPTIONS, useValue: options }],
    };
  }
}
