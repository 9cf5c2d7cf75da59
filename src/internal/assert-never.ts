/** Exhaustiveness check for discriminated unions: a new variant becomes a compile error. */
export function assertNever(value: never): never {
  throw new Error(`unexpected variant: ${JSON.stringify(value)}`);
}
