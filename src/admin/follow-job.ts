import type { IncomingMessage, ServerResponse } from 'node:http';
import { isFinished, type JobRegistry, type JobView } from './job-registry.js';

/** A comment line this often keeps proxies from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;
/** A stream ends after this (the client reconnects, as EventSource does): no connection is held for ever. */
const MAX_STREAM_MS = 10 * 60_000;

/**
 * Server-Sent Events for one job: an `event: job` with the job's view now, then one per change,
 * and the stream ends after the job finished. A client that goes away only stops its own stream;
 * the job runs on.
 */
export function followJob(req: IncomingMessage, res: ServerResponse, jobs: JobRegistry, id: string): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    connection: 'keep-alive',
  });
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    unsubscribe();
    clearInterval(heartbeat);
    clearTimeout(limit);
    res.end();
  };
  const write = (job: JobView) => {
    if (ended) return;
    res.write(`event: job\ndata: ${JSON.stringify(job)}\n\n`);
    if (isFinished(job)) end();
  };
  const unsubscribe = jobs.subscribe(id, write);
  const heartbeat = setInterval(() => res.write(': still here\n\n'), HEARTBEAT_MS);
  const limit = setTimeout(end, MAX_STREAM_MS);
  heartbeat.unref();
  limit.unref();
  req.once('close', end);
  const now = jobs.get(id);
  if (now) write(now);
  else end();
}
