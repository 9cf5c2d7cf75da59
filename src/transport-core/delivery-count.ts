import { SluiceHeader } from './headers.js';

/**
 * The delivery count every transport reports: the count a copy carried in `sluice-delivery-count`
 * (written by the settlement kernel when a release copies the message), plus the redeliveries the
 * broker counted itself (`brokerRedeliveries`: 0 on a first delivery), plus this delivery.
 */
export function deliveryCountOf(
  headers: Readonly<Record<string, unknown>> | undefined,
  brokerRedeliveries: number,
): number {
  const raw = headers?.[SluiceHeader.deliveryCount];
  const carried = typeof raw === 'string' || typeof raw === 'number' ? Number.parseInt(String(raw), 10) : 0;
  return (Number.isFinite(carried) && carried > 0 ? carried : 0) + brokerRedeliveries + 1;
}
