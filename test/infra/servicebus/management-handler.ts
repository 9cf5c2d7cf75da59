import rhea from 'rhea';
import { AmqpOperationError, Conditions, entityNotFound, statusCodeFor } from './amqp-errors.js';
import type { EntityRegistry } from './entity-registry.js';
import { lockTokenFromManagement } from './lock-token.js';
import { type AmqpMessage, decodeMessage, encodeMessage, messageAnnotation } from './message-codec.js';
import { type Disposition, MessageEntity } from './message-entity.js';

type Body = Record<string, unknown>;

interface OperationResult {
  readonly statusCode: number;
  readonly body?: Body;
}

/** Handles one `<entity>/$management` request and returns the reply (camelCase status properties). */
export function handleManagementRequest(
  entityPath: string,
  request: AmqpMessage,
  registry: EntityRegistry,
  now: () => number,
): AmqpMessage {
  const props: Record<string, unknown> = request.application_properties ?? {};
  const operation = String(props.operation ?? '');
  const body: Body = isRecord(request.body) ? request.body : {};
  let result: OperationResult;
  let error: { condition: string; description: string } | undefined;
  try {
    result = dispatch(operation, entityPath, body, registry, now);
  } catch (e) {
    if (e instanceof AmqpOperationError) error = e.amqp;
    else error = { condition: Conditions.internalError, description: e instanceof Error ? e.message : String(e) };
    result = { statusCode: statusCodeFor(error.condition) };
  }
  const applicationProperties: Record<string, unknown> = {
    statusCode: result.statusCode,
    statusDescription: error?.description ?? (result.statusCode === 204 ? 'No content' : 'OK'),
  };
  if (error !== undefined) applicationProperties.errorCondition = error.condition;
  return {
    to: request.reply_to,
    correlation_id: request.message_id,
    application_properties: applicationProperties,
    body: result.body,
  } as AmqpMessage;
}

function dispatch(
  operation: string,
  entityPath: string,
  body: Body,
  registry: EntityRegistry,
  now: () => number,
): OperationResult {
  const source = (): MessageEntity => {
    const entity = registry.receiveSource(entityPath);
    if (entity === undefined) throw new AmqpOperationError(entityNotFound(entityPath));
    return entity;
  };
  switch (operation) {
    case 'com.microsoft:renew-lock': {
      const entity = source();
      const expirations = lockTokens(body).map((token) => {
        const until = entity.renewLock(token);
        if (until === undefined) throw lockLost();
        return new Date(until);
      });
      return { statusCode: 200, body: { expirations: rhea.types.wrap_array(expirations, 0x83, undefined) } };
    }
    case 'com.microsoft:schedule-message': {
      const target = registry.sendTarget(entityPath);
      if (target === undefined) throw new AmqpOperationError(entityNotFound(entityPath));
      const entries = Array.isArray(body.messages) ? body.messages : [];
      const decoded = entries.map((entry: unknown) => {
        const raw = isRecord(entry) ? entry.message : undefined;
        if (!Buffer.isBuffer(raw)) throw badRequest('schedule-message entries must carry an encoded message.');
        return decodeMessage(raw);
      });
      for (const m of decoded) {
        const problem = target.validate(m);
        if (problem !== undefined) throw badRequest(problem);
      }
      const seqs = decoded.map((m) => {
        const at = messageAnnotation(m, 'x-opt-scheduled-enqueue-time');
        const atMs = at instanceof Date ? at.getTime() : typeof at === 'number' ? at : now();
        return target.schedule(m, atMs);
      });
      return { statusCode: 200, body: { 'sequence-numbers': rhea.types.wrap_array(seqs, 0x81, undefined) } };
    }
    case 'com.microsoft:cancel-scheduled-message': {
      const target = registry.sendTarget(entityPath);
      if (target === undefined) throw new AmqpOperationError(entityNotFound(entityPath));
      for (const seq of sequenceNumbers(body)) target.cancelScheduled(seq);
      return { statusCode: 200 };
    }
    case 'com.microsoft:peek-message': {
      const entity = source();
      const from = toNumber(body['from-sequence-number']) ?? 1;
      const count = toNumber(body['message-count']) ?? 1;
      const sessionId = typeof body['session-id'] === 'string' ? body['session-id'] : undefined;
      const found = entity.peek(from, count, sessionId);
      if (found.length === 0) return { statusCode: 204 };
      return {
        statusCode: 200,
        body: { messages: found.map((e) => ({ message: encodeMessage(MessageEntity.toWireMessage(e)) })) },
      };
    }
    case 'com.microsoft:update-disposition': {
      const entity = source();
      const disposition = toDisposition(body);
      for (const token of lockTokens(body)) {
        const result = entity.settle(token, disposition, undefined);
        if (result !== 'ok') throw lockLost();
      }
      return { statusCode: 200 };
    }
    case 'com.microsoft:receive-by-sequence-number': {
      const entity = source();
      const mode = toNumber(body['receiver-settle-mode']) === 0 ? 'receiveAndDelete' : 'peekLock';
      const sessionId = typeof body['session-id'] === 'string' ? body['session-id'] : undefined;
      const received = entity.receiveDeferred(sequenceNumbers(body), mode, sessionId);
      if (received === undefined) {
        throw new AmqpOperationError({
          condition: Conditions.messageNotFound,
          description:
            'Failed to lock one or more specified messages. Either the message is not deferred, already locked, or does not exist.',
        });
      }
      return {
        statusCode: 200,
        body: {
          messages: received.map(({ entry, token }) => {
            const item: Record<string, unknown> = { message: encodeMessage(MessageEntity.toWireMessage(entry)) };
            if (token !== undefined) item['lock-token'] = rhea.types.wrap_uuid(token.bytes);
            return item;
          }),
        },
      };
    }
    case 'com.microsoft:renew-session-lock': {
      const entity = source();
      const until = entity.renewSessionLock(String(body['session-id']));
      if (until === undefined) throw sessionLockLost();
      return { statusCode: 200, body: { expiration: new Date(until) } };
    }
    case 'com.microsoft:get-session-state': {
      const entity = source();
      const sessionId = String(body['session-id']);
      if (!entity.isSessionLocked(sessionId)) throw sessionLockLost();
      return { statusCode: 200, body: { 'session-state': entity.getSessionState(sessionId) ?? null } };
    }
    case 'com.microsoft:set-session-state': {
      const entity = source();
      const sessionId = String(body['session-id']);
      if (!entity.isSessionLocked(sessionId)) throw sessionLockLost();
      const state = body['session-state'];
      entity.setSessionState(sessionId, Buffer.isBuffer(state) ? state : undefined);
      return { statusCode: 200 };
    }
    default:
      throw new AmqpOperationError({
        condition: Conditions.notImplemented,
        description: `The emulator does not implement the management operation '${operation}'.`,
      });
  }
}

function toDisposition(body: Body): Disposition {
  const status = body['disposition-status'];
  const propertiesToModify = isRecord(body['properties-to-modify']) ? body['properties-to-modify'] : undefined;
  switch (status) {
    case 'completed':
      return { kind: 'complete' };
    case 'abandoned':
      return { kind: 'abandon', propertiesToModify };
    case 'defered':
      return { kind: 'defer', propertiesToModify };
    case 'suspended': {
      const reason = body['deadletter-reason'];
      const description = body['deadletter-description'];
      return {
        kind: 'deadLetter',
        reason: typeof reason === 'string' ? reason : undefined,
        description: typeof description === 'string' ? description : undefined,
        propertiesToModify,
      };
    }
    default:
      throw badRequest(`Unknown disposition-status '${String(status)}'.`);
  }
}

function lockTokens(body: Body): string[] {
  const raw = body['lock-tokens'];
  const list: unknown[] = Array.isArray(raw) ? raw : [raw];
  return list.map((v) => {
    const id = lockTokenFromManagement(v);
    if (id === undefined) throw badRequest('Invalid lock token.');
    return id;
  });
}

function sequenceNumbers(body: Body): number[] {
  const raw = body['sequence-numbers'];
  const list: unknown[] = Array.isArray(raw) ? raw : [raw];
  return list.map((v) => {
    const n = toNumber(v);
    if (n === undefined) throw badRequest('Invalid sequence number.');
    return n;
  });
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (Buffer.isBuffer(v) && v.length === 8) return Number(v.readBigInt64BE());
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function badRequest(description: string): AmqpOperationError {
  return new AmqpOperationError({ condition: Conditions.argumentError, description });
}

function lockLost(): AmqpOperationError {
  return new AmqpOperationError({
    condition: Conditions.messageLockLost,
    description:
      'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.',
  });
}

function sessionLockLost(): AmqpOperationError {
  return new AmqpOperationError({
    condition: Conditions.sessionLockLost,
    description: 'The session lock has expired on the MessageSession. Accept a new MessageSession.',
  });
}
