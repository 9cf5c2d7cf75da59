import type { KafkaMessage } from 'kafkajs';
import { deliveryCountOf, SluiceHeader, withoutHeaders } from '../../src/transport-core/index.js';
import { type DeliveryOwner, KafkaDelivery } from './kafka-delivery.js';
import { KafkaHeader } from './kafka-header.js';
import type { PartitionState } from './partition-state.js';
import { tombstoneBody, UNKNOWN_TOMBSTONE_TYPE } from './tombstone-body.js';
import type { TopicNaming } from './topic-naming.js';

/**
 * The delivery of one fetched record: its headers without the retry topic's due time, its count
 * (the count a copy carried, plus the group's delivery mark: how often this offset was handed out
 * before), and a tombstone's body made from the record when it has no value.
 */
export function recordDelivery(
  owner: DeliveryOwner,
  state: PartitionState,
  message: KafkaMessage,
  offset: number,
  raw: Record<string, string>,
  address: string,
  naming: TopicNaming,
): KafkaDelivery {
  const { topic, partition } = state;
  const headers = KafkaHeader.dueAt in raw ? withoutHeaders(raw, [KafkaHeader.dueAt]) : raw;
  const readsBefore =
    state.prior !== undefined && offset >= state.priorFrom && offset <= state.prior.through ? state.prior.count : 0;
  const partitionKey = message.key === null ? undefined : message.key.toString('utf8');
  const body =
    message.value ??
    tombstoneBody({
      topic,
      partition,
      offset: message.offset,
      key: partitionKey,
      timestampMs: Number(message.timestamp),
      type: raw[SluiceHeader.messageType] ?? naming.typeOfTopic(topic) ?? UNKNOWN_TOMBSTONE_TYPE,
    });
  return new KafkaDelivery(
    owner,
    state,
    offset,
    message.key,
    address,
    body,
    headers,
    deliveryCountOf(raw, readsBefore),
    partitionKey,
  );
}
