/** A refusal the health handler answers with its status and a JSON body; never logged as a failure. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    readonly issues?: string[],
    /** Answer with `connection: close` (the request was not read to its end). */
    readonly close = false,
  ) {
    super(message);
  }
}
