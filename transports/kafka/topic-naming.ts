import { TransportError } from '../../src/transport-core/index.js';
import type { KafkaTransportConfig } from './kafka-config.js';

const LEGAL = /^[A-Za-z0-9._-]{1,249}$/;

/** The topics and group of one endpoint. */
export interface EndpointTopics {
  readonly address: string;
  readonly group: string;
  readonly input: string;
  readonly retry: string;
  readonly deadLetter: string;
  /** Topics of the message types the endpoint handles (publishes reach it through these). */
  readonly subscriptions: readonly string[];
}

/**
 * Sluice's addressing on Kafka, in one place. An endpoint's address is its input topic (a send goes
 * there); its group id is the endpoint name; a publish goes to a topic named after the message type
 * (or `publishTopics`); each endpoint has its own retry and dead-letter topics. Throws
 * `TransportError` (not retryable) for names Kafka refuses.
 */
export class TopicNaming {
  constructor(private readonly config: KafkaTransportConfig) {}

  inputTopic(address: string): string {
    return this.#checked(this.config.topicPrefix + address);
  }

  group(endpoint: string): string {
    return this.config.groupIdPrefix + endpoint;
  }

  typeTopic(messageType: string): string {
    const mapped = this.config.publishTopics[messageType];
    return this.#checked(mapped ?? this.config.topicPrefix + messageType.replace(/[:/]/g, '_'));
  }

  /** The message type a topic carries, for tombstones without a type header. */
  typeOfTopic(topic: string): string | undefined {
    const configured = this.config.tombstoneTypes[topic];
    if (configured) return configured;
    for (const [type, mapped] of Object.entries(this.config.publishTopics)) if (mapped === topic) return type;
    return undefined;
  }

  endpoint(address: string, group: string, messageTypes: readonly string[]): EndpointTopics {
    const input = this.inputTopic(address);
    const fill = (template: string) =>
      this.#checked(template.replaceAll('{topic}', input).replaceAll('{group}', group));
    return {
      address,
      group,
      input,
      retry: fill(this.config.retryTopic),
      deadLetter: fill(this.config.deadLetterTopic),
      subscriptions: [...new Set(messageTypes.map((t) => this.typeTopic(t)))].filter((t) => t !== input),
    };
  }

  #checked(topic: string): string {
    if (!LEGAL.test(topic) || topic === '.' || topic === '..') {
      throw new TransportError(`"${topic}" is not a valid Kafka topic name (1-249 of letters, digits, . _ -)`, {
        retryable: false,
      });
    }
    return topic;
  }
}
