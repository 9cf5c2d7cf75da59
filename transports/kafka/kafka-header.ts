/** Headers the Kafka transport adds; stable wire format. */
export const KafkaHeader = {
  messageId: 'sluice-message-id',
  contentType: 'content-type',
  /** On a retry-topic copy: epoch milliseconds before which it must not be delivered. */
  dueAt: 'sluice-kafka-due-at',
  /** On retry and dead-letter copies: `<topic>:<partition>:<offset>` of the record copied. */
  source: 'sluice-kafka-source',
  /**
   * On a dead letter whose copy did not fit the dead-letter topic (`max.message.bytes`): why the
   * body is empty. The body is read from `source` again on redrive.
   */
  bodyOmitted: 'sluice-kafka-body-omitted',
} as const;

/** Whether a produce failed because the record is larger than the topic accepts. */
export function isMessageTooLarge(error: unknown): boolean {
  return (error as { type?: unknown } | null)?.type === 'MESSAGE_TOO_LARGE';
}

/** `<topic>:<partition>:<offset>` (a delivery id) → its parts; undefined when malformed. */
export function parseRecordPosition(
  text: string | undefined,
): { topic: string; partition: number; offset: number } | undefined {
  const match = text === undefined ? null : /^(.+):(\d+):(\d+)$/.exec(text);
  if (!match) return undefined;
  return { topic: match[1] as string, partition: Number(match[2]), offset: Number(match[3]) };
}
