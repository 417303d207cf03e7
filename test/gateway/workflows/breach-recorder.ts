/**
 * Test-only stand-in for `canaryRollout` (the canary issue defines the real one): records every
 * `kpiBreach` signal it receives and answers them through the `breaches` query. Sandbox rules apply.
 */
import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';
import { KPI_BREACH_SIGNAL, type KpiBreach } from '../../../src/core/contracts/gateway';

export const kpiBreachSignal = defineSignal<[KpiBreach]>(KPI_BREACH_SIGNAL);
export const breachesQuery = defineQuery<KpiBreach[]>('breaches');

export async function breachRecorder(): Promise<KpiBreach[]> {
  const breaches: KpiBreach[] = [];
  setHandler(kpiBreachSignal, (b) => void breaches.push(b));
  setHandler(breachesQuery, () => breaches);
  await condition(() => breaches.length >= 100, '10 minutes');
  return breaches;
}
