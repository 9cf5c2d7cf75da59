import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { expect } from 'vitest';
import { z } from 'zod';
import { createBus } from '../../../bus/create-bus.js';
import { defineMessage } from '../../../contracts/define-message.js';
import type { ConformanceCase } from '../conformance-case.js';
import { waitFor } from '../wait-for.js';

const silent = pino({ level: 'silent' });

/** The transport under a whole bus, as a service runs it. */
export const busCases: readonly ConformanceCase[] = [
  {
    name: 'keeps per-key order under concurrency (through the bus)',
    async run({ definition, config, patience }) {
      const Step = defineMessage(
        `conformance.step-${randomUUID().slice(0, 8)}.v1`,
        z.object({ key: z.string(), seq: z.number() }),
      );
      const bus = createBus(
        { service: 'conformance', transport: config(), shutdown: { signals: [], timeoutMs: 5_000 } },
        { transports: [definition], logger: silent },
      );
      const seen = new Map<string, number[]>();
      let handled = 0;
      const endpoint = `conf-order-${randomUUID().slice(0, 8)}`;
      bus
        .endpoint(endpoint, { concurrency: 16, prefetch: 64, orderBy: 'key', retry: { kind: 'none' } })
        .handle(Step, async (m) => {
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          const list = seen.get(m.key) ?? [];
          list.push(m.seq);
          seen.set(m.key, list);
          handled++;
        });
      await bus.start();
      try {
        const keys = 8;
        const perKey = 25;
        for (let seq = 0; seq < perKey; seq++) {
          for (let k = 0; k < keys; k++) await bus.send(endpoint, Step, { key: `k${k}`, seq }, { key: `k${k}` });
        }
        await waitFor(() => handled === keys * perKey, { timeoutMs: patience * 4, what: 'all steps' });
        for (const [, list] of seen) expect(list).toEqual([...list].sort((a, b) => a - b));
        expect(seen.size).toBe(keys);
      } finally {
        await bus.stop();
      }
    },
  },
];
