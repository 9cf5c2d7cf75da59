import type { Connection, Delivery, Message, Receiver, Sender } from 'rhea';
import rhea from 'rhea';
import { type AmqpErrorShape, Conditions, entityNotFound, notAllowed, unauthorized } from './amqp-errors.js';
import { handleCbsRequest } from './cbs-handler.js';
import type { ConnectionState } from './connection-state.js';
import { DeliveryLink } from './delivery-link.js';
import { EntityRegistry } from './entity-registry.js';
import { toDotNetTicksBuffer } from './lock-token.js';
import { handleManagementRequest } from './management-handler.js';
import { type AmqpMessage, decodeIncoming } from './message-codec.js';
import type { MessageEntity, ReceiveMode } from './message-entity.js';
import { holdAttach, isLocallyOpen, remoteAttach, setLocalAttachField, settleWith } from './rhea-internals.js';
import type { TimerSet } from './timer-set.js';

export const SESSION_FILTER = 'com.microsoft:session-filter';
const MAX_MESSAGE_SIZE = 1024 * 1024;
const MANAGEMENT_SUFFIX = '/$management';

export interface RouterContext {
  readonly registry: EntityRegistry;
  readonly timers: TimerSet;
  readonly now: () => number;
  readonly keyName: string;
  readonly key: string;
  /** Upper bound for how long an accept-next-session attach is held open waiting for a session. */
  readonly maxSessionWaitMs: number;
  state(connection: Connection): ConnectionState;
  track(link: Sender, delivery: DeliveryLink): void;
}

/** The SDK attached a sending link: the server receives (entity sends, $cbs and $management requests). */
export function onClientSenderAttached(link: Receiver, ctx: RouterContext): void {
  const attach = remoteAttach(link);
  const address = attach.target?.address ?? '';
  link.set_target({ address });
  const state = ctx.state(link.connection);

  if (address === '$cbs') {
    link.on('message', (e: { message: Message; delivery: Delivery }) => {
      e.delivery.accept();
      const reply = handleCbsRequest(e.message, state, { keyName: ctx.keyName, key: ctx.key, now: ctx.now });
      sendReply(state, reply);
    });
    return;
  }

  if (address.toLowerCase().endsWith(MANAGEMENT_SUFFIX)) {
    const entityPath = address.slice(0, -MANAGEMENT_SUFFIX.length);
    const problem = checkAccess(address, state, ctx, () => ctx.registry.exists(entityPath));
    if (problem !== undefined) {
      refuse(link, problem);
      return;
    }
    link.on('message', (e: { message: Message; delivery: Delivery }) => {
      e.delivery.accept();
      sendReply(state, handleManagementRequest(entityPath, e.message, ctx.registry, ctx.now));
    });
    return;
  }

  const target = ctx.registry.sendTarget(address);
  const problem = checkAccess(address, state, ctx, () => target !== undefined);
  if (problem !== undefined) {
    refuse(link, problem);
    return;
  }
  if (target === undefined) {
    refuse(link, entityNotFound(address));
    return;
  }
  setLocalAttachField(link, 'max_message_size', MAX_MESSAGE_SIZE);
  link.on('message', (e: { message: Message | Buffer; delivery: Delivery; format?: number }) => {
    let messages: AmqpMessage[];
    try {
      messages = decodeIncoming(e.message, e.format ?? e.delivery.format);
    } catch (err) {
      settleWith(e.delivery, 'rejected', {
        error: { condition: Conditions.invalidField, description: err instanceof Error ? err.message : String(err) },
      });
      return;
    }
    for (const m of messages) {
      const invalid = target.validate(m);
      if (invalid !== undefined) {
        settleWith(e.delivery, 'rejected', { error: { condition: Conditions.invalidField, description: invalid } });
        return;
      }
    }
    for (const m of messages) target.send(m);
    settleWith(e.delivery, 'accepted');
  });
}

/** The SDK attached a receiving link: the server sends (entity deliveries, $cbs/$management replies). */
export function onClientReceiverAttached(link: Sender, ctx: RouterContext): void {
  const attach = remoteAttach(link);
  const address = attach.source?.address ?? '';
  const state = ctx.state(link.connection);
  setLocalAttachField(link, 'snd_settle_mode', attach.snd_settle_mode ?? 2);
  setLocalAttachField(link, 'rcv_settle_mode', attach.rcv_settle_mode ?? 0);

  if (address === '$cbs' || address.toLowerCase().endsWith(MANAGEMENT_SUFFIX)) {
    link.set_source({ address });
    if (attach.target?.address !== undefined) state.addReplyLink(attach.target.address, link);
    if (attach.name !== undefined) state.addReplyLink(attach.name, link);
    link.on('sender_close', () => state.removeReplyLink(link));
    return;
  }

  const entity = ctx.registry.receiveSource(address);
  const problem = checkAccess(address, state, ctx, () => entity !== undefined);
  if (problem !== undefined) {
    refuse(link, problem);
    return;
  }
  if (entity === undefined) {
    refuse(link, entityNotFound(address));
    return;
  }
  const receiveMode: ReceiveMode = attach.snd_settle_mode === 1 ? 'receiveAndDelete' : 'peekLock';
  const filter = attach.source?.filter ?? undefined;
  const wantsSession = filter !== undefined && filter !== null && SESSION_FILTER in filter;

  if (!wantsSession) {
    if (entity.requiresSession) {
      refuse(
        link,
        notAllowed(
          `It is not possible for an entity that requires sessions to create a non-sessionful message receiver. Entity: '${address}'.`,
        ),
      );
      return;
    }
    link.set_source({ address });
    startDelivery(link, entity, receiveMode, ctx);
    return;
  }
  if (!entity.requiresSession) {
    refuse(
      link,
      notAllowed(
        `It is not possible for an entity that does not require sessions to create a sessionful message receiver. Entity: '${address}'.`,
      ),
    );
    return;
  }
  const requested = unwrapString(filter[SESSION_FILTER]);
  acceptSession(link, entity, receiveMode, requested, attach.properties ?? undefined, ctx);
}

function acceptSession(
  link: Sender,
  entity: MessageEntity,
  receiveMode: ReceiveMode,
  requested: string | undefined,
  linkProperties: Record<string, unknown> | undefined,
  ctx: RouterContext,
): void {
  const address = remoteAttach(link).source?.address ?? '';
  const delivery = new DeliveryLink(link, entity, receiveMode, true);
  const attempt = (): boolean => {
    const result = entity.tryAcquireSession(delivery, requested);
    if (!result.ok) return false;
    delivery.bindSession(result.sessionId);
    link.set_source({ address, filter: { [SESSION_FILTER]: result.sessionId } });
    setLocalAttachField(link, 'properties', {
      'com.microsoft:locked-until-utc': rhea.types.wrap_long(toDotNetTicksBuffer(result.lockedUntilMs)),
    });
    return true;
  };

  if (attempt()) {
    startTracked(link, delivery, ctx);
    return;
  }
  if (requested !== undefined) {
    refuse(link, {
      condition: Conditions.sessionCannotBeLocked,
      description: `The requested session '${requested}' cannot be accepted. It may be locked by another receiver.`,
    });
    return;
  }
  // Accept-next-session with nothing available: hold the attach until a session shows up or the
  // client's long-poll timeout (link property com.microsoft:timeout) passes, as the service does.
  holdAttach(link);
  const requestedTimeout = linkProperties?.['com.microsoft:timeout'];
  const waitMs = Math.min(typeof requestedTimeout === 'number' ? requestedTimeout : 60_000, ctx.maxSessionWaitMs);
  let finished = false;
  const finish = (): void => {
    finished = true;
    cancelWait();
    ctx.timers.clear(timer);
  };
  const cancelWait = entity.waitForSession(() => {
    if (finished) return true;
    if (!link.is_remote_open()) {
      finish();
      return true;
    }
    if (!attempt()) return false;
    finish();
    link.open();
    startTracked(link, delivery, ctx);
    return true;
  });
  const timer = ctx.timers.setTimeout(() => {
    if (finished) return;
    finish();
    link.set_source({ address });
    link.open();
    link.close({
      condition: Conditions.timeout,
      description:
        'The operation did not complete within the allocated time (no unlocked session with messages was available).',
    });
  }, waitMs);
  link.on('sender_close', () => {
    if (finished) return;
    finish();
    // answer the client's detach: an attach must precede our detach
    if (!isLocallyOpen(link)) link.open();
  });
}

function startTracked(link: Sender, delivery: DeliveryLink, ctx: RouterContext): void {
  ctx.track(link, delivery);
  link.on('sender_close', () => delivery.stop());
  delivery.start();
}

function startDelivery(link: Sender, entity: MessageEntity, receiveMode: ReceiveMode, ctx: RouterContext): void {
  startTracked(link, new DeliveryLink(link, entity, receiveMode, false), ctx);
}

function checkAccess(
  path: string,
  state: ConnectionState,
  ctx: RouterContext,
  exists: () => boolean,
): AmqpErrorShape | undefined {
  if (!state.isAuthorized(EntityRegistry.normalize(path), ctx.now())) {
    return unauthorized(`Unauthorized access. A valid CBS token (put-token) for '${path}' is required.`);
  }
  if (!exists()) return entityNotFound(path);
  return undefined;
}

function refuse(link: Sender | Receiver, error: AmqpErrorShape): void {
  link.close(error);
}

function sendReply(state: ConnectionState, reply: AmqpMessage): void {
  const to = typeof reply.to === 'string' ? reply.to : undefined;
  const link = to === undefined ? undefined : state.replyLink(to);
  if (link === undefined || !link.is_open()) return;
  link.send(reply);
}

function unwrapString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && 'value' in value) {
    const inner = (value as { value: unknown }).value;
    return typeof inner === 'string' ? inner : undefined;
  }
  return undefined;
}
