/**
 * A result that is there now, or later. Stages return `MaybePromise<Outcome>`: a stage that decides
 * without waiting returns the outcome itself, so a message whose stages and handler all finish
 * synchronously runs the whole chain without one promise per stage (issue 18). Only native
 * promises count as "later" (every promise in the pipeline is one: `async` functions, `new Promise`);
 * the handler stage turns a handler's other thenables into one.
 */
export type MaybePromise<T> = T | Promise<T>;

/** Whether `value` is a result still to come. */
export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return value instanceof Promise;
}

/**
 * (Not named `then`: a module exporting `then` is a thenable, and `await import()` of it calls it.)
 *
 * Applies `onValue` to `result`: now when the result is there, as a promise callback (with
 * `onError` for a rejection) when it is a promise. A throw of `onValue` applied now becomes a
 * rejected promise, exactly as it would from inside `.then`; like `.then`'s, `onError` is not called
 * for it. A synchronous throw of whatever produced `result` is the caller's: it happens before this
 * is called.
 */
export function andThen<T, R>(
  result: MaybePromise<T>,
  onValue: (value: T) => MaybePromise<R>,
  onError?: (error: unknown) => MaybePromise<R>,
): MaybePromise<R> {
  if (result instanceof Promise) return result.then(onValue, onError);
  try {
    return onValue(result);
  } catch (error) {
    return Promise.reject(error);
  }
}
