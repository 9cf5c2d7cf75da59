import type { Consumer as KafkajsConsumer } from 'kafkajs';
import type { KafkaConsumerDeps } from './kafka-consumer.js';
import { pauseAwareAssigner } from './pause-aware-assigner.js';

/**
 * The kafkajs consumer of one endpoint's group member: the pause-aware assignor (a paused member
 * gets no partitions while others run), the group timeouts from the config, no auto-created topics.
 *
 * kafkajs restarts a crashed consumer only for retriable errors and never for others (such as
 * KafkaJSGroupCoordinatorNotFound while a broker restarts during a join): that consumer is silently
 * dead. `supervised` (an owner listens to the consumer's status: the endpoint's supervisor):
 * kafkajs never restarts it; every crash is reported and the owner makes a new consumer, with
 * backoff, shown in health meanwhile. Unsupervised, kafkajs's own restart is kept (retriable only).
 */
export function groupMember(
  { kafka, config, topics, options }: Pick<KafkaConsumerDeps, 'kafka' | 'config' | 'topics' | 'options'>,
  paused: () => boolean,
): KafkajsConsumer {
  const supervised = options.onStatus !== undefined;
  return kafka.consumer({
    groupId: topics.group,
    partitionAssigners: [pauseAwareAssigner(paused)],
    ...memberSettings(config),
    maxBytesPerPartition: config.maxBytesPerPartition,
    retry: {
      retries: 8,
      initialRetryTime: 100,
      maxRetryTime: 2_000,
      ...(supervised ? { restartOnFailure: async () => false } : {}),
    },
  });
}

/**
 * What every group member Sluice makes shares (an endpoint's, a range read's): the group timeouts
 * and the fetch wait from the config, and no auto-created topics.
 */
export function memberSettings(config: KafkaConsumerDeps['config']) {
  return {
    sessionTimeout: config.sessionTimeoutMs,
    rebalanceTimeout: config.rebalanceTimeoutMs,
    heartbeatInterval: config.heartbeatIntervalMs,
    maxWaitTimeInMs: config.maxWaitTimeMs,
    allowAutoTopicCreation: false,
  };
}

/** Pauses the assigned partitions `held` says should not be fetched, and resumes the others. */
export function applyPauses(
  consumer: KafkajsConsumer,
  assigned: Readonly<Record<string, readonly number[]>>,
  held: (topic: string, partition: number) => boolean,
): void {
  const pause: { topic: string; partitions: number[] }[] = [];
  const resume: { topic: string; partitions: number[] }[] = [];
  for (const [topic, partitions] of Object.entries(assigned)) {
    const p: number[] = [];
    const r: number[] = [];
    for (const partition of partitions) (held(topic, partition) ? p : r).push(partition);
    if (p.length > 0) pause.push({ topic, partitions: p });
    if (r.length > 0) resume.push({ topic, partitions: r });
  }
  if (pause.length > 0) consumer.pause(pause);
  if (resume.length > 0) consumer.resume(resume);
}
