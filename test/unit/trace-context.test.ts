import { readFileSync } from 'node:fs';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { cloudEventsCodec, createEnvelope } from '../../src/index.js';
import { SCOPE_VERSION } from '../../src/telemetry/semantic.js';
import { parseTraceparent, producerContext, traceFieldsOf, traceHeaders } from '../../src/telemetry/trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('trace context', () => {
  it('parses a W3C traceparent and its tracestate', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`, 'a=1,b=2')).toMatchObject({
      traceId: TRACE,
      spanId: SPAN,
      traceFlags: 1,
      isRemote: true,
    });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`, 'a=1')?.traceState?.get('a')).toBe('1');
  });

  it('refuses malformed, all-zero, version ff and oversized values without throwing', () => {
    for (const bad of [
      undefined,
      42,
      '',
      'garbage',
      `00-${'0'.repeat(32)}-${SPAN}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `ff-${TRACE}-${SPAN}-01`,
      `00-${TRACE}-${SPAN}-01-extra`,
      `00-${TRACE.toUpperCase()}-${SPAN}-01`,
      `00-${TRACE}-${SPAN}-01${' '.repeat(600)}`,
    ]) {
      expect(parseTraceparent(bad, undefined)).toBeUndefined();
    }
  });

  it('writes back what it reads', () => {
    const sc = parseTraceparent(`00-${TRACE}-${SPAN}-01`, 'vendor=x')!;
    const fields = traceFieldsOf(trace.wrapSpanContext(sc));
    expect(fields).toEqual({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'vendor=x' });
    expect(traceHeaders(fields)).toEqual({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'vendor=x' });
    expect(traceHeaders(undefined)).toEqual({});
  });

  it('injects nothing for a span without a valid context (no SDK)', () => {
    expect(traceFieldsOf(trace.wrapSpanContext({ traceId: '', spanId: '', traceFlags: 0 }))).toBeUndefined();
  });

  it('prefers the envelope over the headers and falls back to the root context', () => {
    const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const fromEnvelope = producerContext(
      { traceparent: `00-${TRACE}-${SPAN}-01` },
      {
        traceparent: `00-${other}-${SPAN}-01`,
      },
    );
    expect(trace.getSpanContext(fromEnvelope)?.traceId).toBe(TRACE);
    const fromHeaders = producerContext(undefined, { traceparent: `00-${other}-${SPAN}-01` });
    expect(trace.getSpanContext(fromHeaders)?.traceId).toBe(other);
    expect(producerContext({}, {})).toBe(ROOT_CONTEXT);
  });

  it('carries traceparent and tracestate through the CloudEvents codec', () => {
    const envelope = {
      ...createEnvelope('a.b.v1', 'svc', { n: 1 }),
      traceparent: `00-${TRACE}-${SPAN}-01`,
      tracestate: 'vendor=x',
    };
    const wire = JSON.parse(cloudEventsCodec.encode(envelope).toString());
    expect(wire).toMatchObject({ traceparent: envelope.traceparent, tracestate: 'vendor=x' });
    expect(cloudEventsCodec.decode(cloudEventsCodec.encode(envelope))).toEqual({ ok: true, envelope });
  });

  it('accepts an event whose traceparent is not a string, without trace context', () => {
    const body = Buffer.from(
      JSON.stringify({
        specversion: '1.0',
        id: '1',
        source: 's',
        type: 't',
        time: '2026-11-22T10:00:00Z',
        traceparent: 7,
      }),
    );
    const result = cloudEventsCodec.decode(body);
    expect(result.ok && result.envelope.traceparent).toBeUndefined();
  });

  it('names the instrumentation scope with the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(SCOPE_VERSION).toBe(pkg.version);
  });
});
