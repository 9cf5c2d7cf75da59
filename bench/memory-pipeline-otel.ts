// The memory pipeline benchmark (bench/memory-pipeline.ts) with the OpenTelemetry SDK registered:
// AsyncLocalStorage context manager, a tracer provider that samples every span into a batch
// processor whose exporter discards them, and a meter provider with a reader that collects every
// 10 s. Compare with the plain run to see what telemetry costs when an application turns it on.
//
//   npx tsx bench/memory-pipeline-otel.ts [messages=200000] [runs=5]
//
// OTEL_BENCH=traces|metrics|no-context registers only that part (no-context: traces and metrics
// without the AsyncLocalStorage context manager), to see where the cost is.
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import {
  InMemoryMetricExporter,
  AggregationTemporality,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';

let exported = 0;
const discard: SpanExporter = {
  export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
    exported += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  },
  shutdown: () => Promise.resolve(),
};

const parts = process.env.OTEL_BENCH ?? 'all';
if (parts === 'all' || parts === 'traces') {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}
if (parts !== 'metrics') {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discard)] }));
}
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
if (parts !== 'traces')
  metrics.setGlobalMeterProvider(
    new MeterProvider({
      readers: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 10_000 })],
    }),
  );

console.log(`OpenTelemetry SDK registered (${parts}; all spans sampled, batch processor, discarding exporter)`);
await import('./memory-pipeline.js');
console.log(`spans exported: ${exported.toLocaleString('en-US')} (the batch processor drops what overflows its queue)`);
