/**
 * What the `sluice` command's exit status means (documented in `docs/console.md`; scripts rely on
 * them, so a code never changes meaning).
 */
export const ExitCode = {
  ok: 0,
  /** The operation failed (a job failed, the service answered 5xx). */
  failed: 1,
  /** The command line or the request was wrong (also: asked to confirm without a terminal). */
  usage: 2,
  /** No such endpoint, dead letter or job. */
  notFound: 3,
  /** No token, a wrong token, or a read token for an action. */
  unauthorized: 4,
  /** Refused because of the state of things: a job already runs on the endpoint, the confirmed count no longer holds. */
  conflict: 5,
  /** The service could not be reached. */
  unreachable: 6,
  /** The operator said no at the prompt, or cancelled the job. */
  declined: 7,
  /** Interrupted (Ctrl-C) while following a job: the job goes on in the service. */
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the command reports with a message and an exit code (no stack trace). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

/** The exit code for an HTTP status the admin API answered with. */
export function exitCodeOfStatus(status: number): ExitCode {
  if (status === 400 || status === 405 || status === 413) return ExitCode.usage;
  if (status === 401 || status === 403) return ExitCode.unauthorized;
  if (status === 404) return ExitCode.notFound;
  if (status === 409) return ExitCode.conflict;
  return ExitCode.failed;
}
