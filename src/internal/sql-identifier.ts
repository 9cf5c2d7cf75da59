import { z } from 'zod';

const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * A schema, table or index name safe to interpolate into SQL (lower-case identifier): the inbox's,
 * the outbox's and the history's table settings.
 */
export const SqlIdentifierSchema = z
  .string()
  .regex(SQL_NAME, 'a lower-case SQL identifier: letters, digits and _, starting with a letter or _, at most 63');
