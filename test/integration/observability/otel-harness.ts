import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  type DataPoint,
  type HistogramMetricData,
  MeterProvider,
  MetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** Collects on demand (`collect()`), never on a timer. */
class ManualReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The OpenTelemetry SDK registered globally for one test file (vitest runs each file in its own
 * worker), with an in-memory span exporter and a manually collected metric reader. `reset()` gives
 * each test empty spans and a fresh meter provider: create the bus after it, since Sluice takes its
 * meter when the bus starts.
 */
export class OtelHarness {
  readonly spans = new InMemorySpanExporter();
  #reader = new ManualReader();
  #meterProvider: MeterProvider | undefined;

  constructor() {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.spans)] }));
  }

  async reset(): Promise<void> {
    this.spans.reset();
    await this.#meterProvider?.shutdown();
    metrics.disable();
    this.#reader = new ManualReader();
    this.#meterProvider = new MeterProvider({ readers: [this.#reader] });
    metrics.setGlobalMeterProvider(this.#meterProvider);
  }

  async shutdown(): Promise<void> {
    await this.#meterProvider?.shutdown();
    metrics.disable();
    trace.disable();
    context.disable();
  }

  finished(): ReadableSpan[] {
    return this.spans.getFinishedSpans();
  }

  async metrics(): Promise<Map<string, MetricData>> {
    const { resourceMetrics } = await this.#reader.collect();
    const byName = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics) for (const m of scope.metrics) byName.set(m.descriptor.name, m);
    return byName;
  }

  /** The data points of a sum or gauge, as `value` by the given attributes' values joined with `|`. */
  async points(name: string, ...keys: string[]): Promise<Record<string, number>> {
    const metric = (await this.metrics()).get(name);
    const out: Record<string, number> = {};
    for (const point of (metric?.dataPoints ?? []) as DataPoint<number>[]) {
      const label = keys.map((k) => String(point.attributes[k] ?? '')).join('|');
      out[label] = (out[label] ?? 0) + point.value;
    }
    return out;
  }

  /** The total count of a histogram's recordings. */
  async histogramCount(name: string): Promise<number> {
    const metric = (await this.metrics()).get(name) as HistogramMetricData | undefined;
    return (metric?.dataPoints ?? []).reduce((sum, p) => sum + p.value.count, 0);
  }
}
