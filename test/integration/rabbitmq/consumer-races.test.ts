import amqp from 'amqplib';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { RabbitmqConsumer } from '../../../transports/rabbitmq/rabbitmq-consumer.js';
import type { SettlementRoutes } from '../../../transports/rabbitmq/rabbitmq-delivery.js';
import { rabbitmqCapabilities } from '../../../transports/rabbitmq/rabbitmq-transport.js';
import { RABBITMQ_URL, unique } from './rabbitmq-test-kit.js';

const routes = (address: string): SettlementRoutes => ({
  address,
  capabilities: rabbitmqCapabilities('classic'),
  publishCopy: async () => {},
  delayQueue: async () => address,
});

describe('RabbitMQ consumer: pause and close racing a (re)open', () => {
  it('a pause that arrives while the channel is being opened leaves no consumer on the queue', async () => {
    const adminModel = await amqp.connect(RABBITMQ_URL);
    const admin = await adminModel.createChannel();
    const model = await amqp.connect(RABBITMQ_URL);
    const queue = unique('race-pause');
    await admin.assertQueue(queue, { durable: false, autoDelete: false });
    try {
      const consumer = new RabbitmqConsumer(
        queue,
        () => {},
        { prefetch: 5 },
        routes(queue),
        pino({ level: 'silent' }),
        () => {},
      );
      await Promise.all([consumer.open(model), consumer.pause()]);
      expect((await admin.checkQueue(queue)).consumerCount).toBe(0);
      await consumer.resume();
      expect((await admin.checkQueue(queue)).consumerCount).toBe(1);
      // The connection drops; a pause and a resume race the reconnection's open.
      await model.close();
      consumer.connectionLost();
      const model2 = await amqp.connect(RABBITMQ_URL);
      try {
        await Promise.all([consumer.open(model2), consumer.pause(), consumer.resume()]);
        expect((await admin.checkQueue(queue)).consumerCount).toBe(1);
        await consumer.close();
        expect((await admin.checkQueue(queue)).consumerCount).toBe(0);
      } finally {
        await model2.close();
      }
    } finally {
      await admin.deleteQueue(queue);
      await adminModel.close();
    }
  });

  it('a close that arrives while the channel is being opened leaves nothing consuming', async () => {
    const model = await amqp.connect(RABBITMQ_URL);
    const admin = await model.createChannel();
    const queue = unique('race-close');
    await admin.assertQueue(queue, { durable: false, autoDelete: false });
    try {
      const consumer = new RabbitmqConsumer(
        queue,
        () => {},
        { prefetch: 5 },
        routes(queue),
        pino({ level: 'silent' }),
        () => {},
      );
      await Promise.all([consumer.open(model), consumer.close()]);
      expect((await admin.checkQueue(queue)).consumerCount).toBe(0);
    } finally {
      await admin.deleteQueue(queue);
      await model.close();
    }
  });
});
