import { z } from 'zod';

const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * PostgreSQL's reserved key words, and those it reserves but as function or type names: neither
 * can name a schema or table unquoted (`CREATE SCHEMA user` is a syntax error at start-up).
 */
const RESERVED = new Set(
  (
    'all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create ' +
    'current_catalog current_date current_role current_time current_timestamp current_user default deferrable ' +
    'desc distinct do else end except false fetch for foreign from grant group having in initially intersect ' +
    'into lateral leading limit localtime localtimestamp not null offset on only or order placing primary ' +
    'references returning select session_user some symmetric system_user table then to trailing true union ' +
    'unique user using variadic when where window with authorization binary collation concurrently cross ' +
    'current_schema freeze full ilike inner is isnull join left like natural notnull outer overlaps right ' +
    'similar tablesample verbose'
  ).split(' '),
);

/**
 * A schema, table or index name safe to interpolate into SQL (lower-case identifier): the inbox's,
 * the outbox's and the history's table settings.
 */
export const SqlIdentifierSchema = z
  .string()
  .regex(SQL_NAME, 'a lower-case SQL identifier: letters, digits and _, starting with a letter or _, at most 63')
  .refine((name) => !RESERVED.has(name), {
    message: 'a word SQL reserves (such as user, order, table): the stores write names unquoted; choose another',
  });

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
