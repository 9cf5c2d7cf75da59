/** AMQP error conditions as Azure Service Bus uses them, and the SDK maps them. */
export interface AmqpErrorShape {
  condition: string;
  description: string;
  info?: Record<string, unknown>;
}

export const Conditions = {
  notFound: 'amqp:not-found',
  unauthorized: 'amqp:unauthorized-access',
  notAllowed: 'amqp:not-allowed',
  notImplemented: 'amqp:not-implemented',
  internalError: 'amqp:internal-error',
  invalidField: 'amqp:invalid-field',
  messageLockLost: 'com.microsoft:message-lock-lost',
  sessionLockLost: 'com.microsoft:session-lock-lost',
  sessionCannotBeLocked: 'com.microsoft:session-cannot-be-locked',
  messageNotFound: 'com.microsoft:message-not-found',
  timeout: 'com.microsoft:timeout',
  argumentError: 'com.microsoft:argument-error',
  detachForced: 'amqp:link:detach-forced',
} as const;

export function entityNotFound(name: string): AmqpErrorShape {
  return {
    condition: Conditions.notFound,
    description: `The messaging entity '${name}' could not be found. To know more visit https://aka.ms/sbResourceMgrExceptions.`,
  };
}

/** The service detaches receive links this way when idle or during maintenance; the SDK attaches again. */
export function detachForced(name: string): AmqpErrorShape {
  return {
    condition: Conditions.detachForced,
    description: `The link to '${name}' is force detached by the broker due to maintenance. To know more visit https://aka.ms/sbResourceMgrExceptions.`,
  };
}

export function messageLockLost(): AmqpErrorShape {
  return {
    condition: Conditions.messageLockLost,
    description:
      'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.',
  };
}

export function sessionLockLost(sessionId: string | undefined): AmqpErrorShape {
  return {
    condition: Conditions.sessionLockLost,
    description: `The session lock has expired on the MessageSession${sessionId === undefined ? '' : ` '${sessionId}'`}. Accept a new MessageSession.`,
  };
}

export function unauthorized(description: string): AmqpErrorShape {
  return { condition: Conditions.unauthorized, description };
}

export function notAllowed(description: string): AmqpErrorShape {
  return { condition: Conditions.notAllowed, description };
}

/** Status codes used in $management replies for a condition. */
export function statusCodeFor(condition: string): number {
  switch (condition) {
    case Conditions.notFound:
    case Conditions.messageNotFound:
      return 404;
    case Conditions.unauthorized:
      return 401;
    case Conditions.messageLockLost:
    case Conditions.sessionLockLost:
      return 410;
    case Conditions.sessionCannotBeLocked:
      return 409;
    case Conditions.notAllowed:
    case Conditions.invalidField:
    case Conditions.argumentError:
      return 400;
    case Conditions.notImplemented:
      return 501;
    case Conditions.timeout:
      return 408;
    default:
      return 500;
  }
}

export class AmqpOperationError extends Error {
  readonly amqp: AmqpErrorShape;
  constructor(amqp: AmqpErrorShape) {
    super(amqp.description);
    this.amqp = amqp;
  }
}
