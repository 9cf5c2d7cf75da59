import type { z } from 'zod';
import { RegistrationError } from '../errors/sluice-error.js';

/**
 * A message type: its wire name plus the zod schema of its data. The data type a handler receives
 * is inferred from the schema's output; publish and send accept the schema's input.
 */
export interface MessageContract<TType extends string = string, TData = unknown, TInput = TData> {
  readonly type: TType;
  readonly schema: z.ZodType<TData, TInput>;
}

/** The data type handlers of a contract receive. */
export type MessageOf<C> = C extends MessageContract<string, infer T, unknown> ? T : never;
/** The data type publish and send accept for a contract. */
export type MessageInputOf<C> = C extends MessageContract<string, unknown, infer I> ? I : never;

const TYPE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._:/-]{0,254}[A-Za-z0-9])?$/;

/**
 * Defines a message contract. `type` is the stable wire name; version it in the name
 * (`orders.order-placed.v1`) rather than changing a published schema incompatibly.
 * Throws `RegistrationError` for an empty or malformed type name.
 *
 * @example
 * const OrderPlaced = defineMessage('orders.order-placed.v1', z.object({ orderId: z.string() }));
 */
export function defineMessage<const TType extends string, TSchema extends z.ZodType>(
  type: TType,
  schema: TSchema,
): MessageContract<TType, z.output<TSchema>, z.input<TSchema>> {
  if (!TYPE_NAME.test(type)) {
    throw new RegistrationError(
      `message type "${type}" must be 1-256 characters of letters, digits and . _ : / - (e.g. "orders.order-placed.v1")`,
    );
  }
  return Object.freeze({ type, schema: schema as z.ZodType<z.output<TSchema>, z.input<TSchema>> });
}
