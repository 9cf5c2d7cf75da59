import type { IncomingMessage } from 'node:http';
import { HttpProblem } from './http-problem.js';

/** The largest body accepted (413 beyond). */
export const MAX_BODY_BYTES = 16 * 1024;
/** A body over the limit is still read (and dropped) up to this, so that the client gets the 413. */
const DRAIN_BYTES = 1024 * 1024;

/**
 * The JSON body: already parsed by a framework (`req.body`), or read here up to 16 KiB within
 * `timeoutMs`. Throws `HttpProblem`: 400 (not JSON), 413 (too large), 408 (not all there in time:
 * a client that stops sending mid-body holds nothing for long).
 */
export async function readJsonBody(req: IncomingMessage, timeoutMs: number): Promise<unknown> {
  const given = (req as IncomingMessage & { body?: unknown }).body;
  if (given !== undefined && !Buffer.isBuffer(given) && typeof given !== 'string') return given;
  let text: string;
  if (given !== undefined) text = given.toString();
  else text = await readText(req, timeoutMs);
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpProblem(400, 'invalid-request', 'the body is not JSON');
  }
}

/**
 * Reads the body up to MAX_BODY_BYTES. A larger one is read to its end and dropped (up to
 * DRAIN_BYTES), so that the client, still sending, receives the 413 instead of a reset connection;
 * past that the connection is closed after the answer. So is it when the body is not complete
 * within `timeoutMs`.
 */
function readText(req: IncomingMessage, timeoutMs: number): Promise<string> {
  // Read already (middleware that consumed the stream without setting `req.body`): nothing comes.
  if (req.readableEnded) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = (close: boolean) =>
      new HttpProblem(413, 'too-large', `the body exceeds ${MAX_BODY_BYTES} bytes`, undefined, close);
    const stop = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else if (size > DRAIN_BYTES) {
        stop();
        req.pause();
        reject(tooLarge(true));
      }
    };
    const onEnd = () => {
      stop();
      if (size > MAX_BODY_BYTES) reject(tooLarge(false));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    // The connection went before the body ended (the client left, or the server's own request
    // timeout closed it): nobody is waiting for an answer, but the wait must end.
    const onClose = () => {
      stop();
      reject(new HttpProblem(400, 'invalid-request', 'the connection closed before the body ended', undefined, true));
    };
    const timer = setTimeout(() => {
      stop();
      req.pause();
      reject(
        new HttpProblem(408, 'request-timeout', `the body did not arrive within ${timeoutMs} ms`, undefined, true),
      );
    }, timeoutMs);
    // A client that hangs must not keep the process alive either.
    timer.unref();
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}
