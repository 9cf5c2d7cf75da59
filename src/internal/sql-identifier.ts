import { z } from 'zod';

const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * A schema, table or index name safe to interpolate into SQL (lower-case identifier): the inbox's,
 * the outbox's and the history's table settings.
 */
export const SqlIdentifierSchema = z
  .string()
  .regex(SQL_NAME, 'a lower-case SQL identifier: letters, digits and _, starting with a letter or _, at most 63');

/** PostgreSQL cuts identifiers at 63 bytes (NAMEDATALEN - 1): longer names collide silently. */
const MAX_NAME = 63;

/**
 * A table name that the store suffixes to name its other relations (`<table>_versions`,
 * `<table>_pending_key_idx`, ...): at most 63 characters with its longest `suffix`, else PostgreSQL
 * would cut two of them to one name (`CREATE ... IF NOT EXISTS` then skips one: a missing index or
 * table found only at run time). Refused at start-up, naming the field.
 */
export function sqlTableName(longestSuffix: string) {
  const max = MAX_NAME - longestSuffix.length;
  return SqlIdentifierSchema.max(
    max,
    `at most ${max} characters: the store names its relations "<table>${longestSuffix}", and PostgreSQL cuts names at ${MAX_NAME}`,
  );
}
