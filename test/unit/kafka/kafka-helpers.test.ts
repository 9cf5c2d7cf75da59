import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { cloudEventsCodec } from '../../../src/index.js';
import { decodeDeliveryMark, encodeDeliveryMark } from '../../../transports/kafka/delivery-mark.js';
import { KafkaTransportConfigSchema } from '../../../transports/kafka/kafka-config.js';
import { pauseAwareAssigner } from '../../../transports/kafka/pause-aware-assigner.js';
import { TopicNaming } from '../../../transports/kafka/topic-naming.js';
import { tombstoneBody } from '../../../transports/kafka/tombstone-body.js';

const { AssignerProtocol } = kafkajs;

describe('delivery mark (offset commit metadata)', () => {
  it('round-trips and ignores metadata Sluice did not write', () => {
    expect(decodeDeliveryMark(encodeDeliveryMark({ through: 41, count: 3 }))).toEqual({ through: 41, count: 3 });
    expect(decodeDeliveryMark('')).toBeUndefined();
    expect(decodeDeliveryMark('other-app')).toBeUndefined();
    expect(decodeDeliveryMark('sluice1:x:1')).toBeUndefined();
    expect(encodeDeliveryMark(undefined)).toBeNull();
  });
});

describe('kafka transport config', () => {
  it('fetches 4 MiB per partition by default, and takes a smaller size from the config', () => {
    expect(KafkaTransportConfigSchema.parse({ kind: 'kafka' }).maxBytesPerPartition).toBe(4 * 1024 * 1024);
    expect(KafkaTransportConfigSchema.parse({ kind: 'kafka', maxBytesPerPartition: 65_536 }).maxBytesPerPartition).toBe(
      65_536,
    );
  });
});

describe('tombstone body', () => {
  it('is a CloudEvent the codec accepts, with a stable id and the record time in UTC', () => {
    const body = tombstoneBody({ topic: 't', partition: 2, offset: '17', key: 'k', timestampMs: 0, type: 'a.b.v1' });
    const decoded = cloudEventsCodec.decode(body);
    expect(decoded.ok && decoded.envelope).toMatchObject({
      id: 'kafka:t:2:17',
      key: 'k',
      tombstone: true,
      occurredAt: '1970-01-01T00:00:00.000Z',
      type: 'a.b.v1',
    });
  });
});

describe('topic naming', () => {
  const naming = new TopicNaming(
    KafkaTransportConfigSchema.parse({ kind: 'kafka', topicPrefix: 'p.', publishTopics: { 'x:y/z': 'mapped' } }),
  );
  it('derives input, retry, dead-letter and type topics', () => {
    expect(naming.endpoint('orders', 'billing', ['orders.placed.v1', 'x:y/z'])).toEqual({
      address: 'orders',
      group: 'billing',
      input: 'p.orders',
      retry: 'p.orders.billing.retry',
      deadLetter: 'p.orders.billing.dlq',
      subscriptions: ['p.orders.placed.v1', 'mapped'],
    });
    expect(naming.typeTopic('a:b/c.v1')).toBe('p.a_b_c.v1');
  });
  it('refuses names Kafka refuses', () => {
    expect(() => naming.inputTopic('has space')).toThrow(/not a valid Kafka topic name/);
  });
});

describe('pause-aware assigner', () => {
  const cluster = { findTopicPartitionMetadata: () => [{ partitionId: 0 }, { partitionId: 1 }] };
  const member = (memberId: string, paused: boolean, topics = ['t']) => ({
    memberId,
    memberMetadata: pauseAwareAssigner(() => paused)({ cluster } as never).protocol({ topics }).metadata,
  });
  const assign = async (members: ReturnType<typeof member>[]) => {
    const result = await pauseAwareAssigner(() => false)({ cluster } as never).assign({ members, topics: ['t'] });
    return Object.fromEntries(
      result.map((r) => [r.memberId, AssignerProtocol.MemberAssignment.decode(r.memberAssignment)?.assignment ?? {}]),
    );
  };

  it('gives partitions to active members before paused ones', async () => {
    expect(await assign([member('a', true), member('b', false)])).toEqual({ a: {}, b: { t: [0, 1] } });
  });
  it('gives them to paused members when nobody else subscribes', async () => {
    expect(await assign([member('a', true), member('b', false, ['other'])])).toEqual({ a: { t: [0, 1] }, b: {} });
  });
  it('spreads partitions round-robin over active members', async () => {
    expect(await assign([member('a', false), member('b', false)])).toEqual({ a: { t: [0] }, b: { t: [1] } });
  });
});
