import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Clock } from '../../src/transport-core/index.js';
import type { KafkaTransportConfig } from './kafka-config.js';
import type { TopicNaming } from './topic-naming.js';

/** What a transport's consumers and dead-letter queues share: its clients, clock, config and naming. */
export interface KafkaClient {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: Producer;
  readonly clock: Clock;
  readonly config: KafkaTransportConfig;
  readonly naming: TopicNaming;
}
