import { describe, expect, it } from 'vitest';
import { createRegistryActivities } from '../../activities/registry';
import {
  DEFAULT_KPI_GUARD_INTERVAL,
  DEFAULT_KPI_GUARD_WINDOW,
  KpiGuardPolicySchema,
  type VersionKpis,
} from '../../src/core/contracts/canary';
import { CheckPhase } from '../../src/core/contracts/checks';
import { formatZodError } from '../../src/core/contracts/errors';
import { Aliases, VersionTags } from '../../src/core/contracts/registry';
import { RetrainingInputSchema } from '../../src/core/contracts/retraining';
import { judgeGuard } from '../../src/core/policy/canary-analysis';
import { MemoryModelRegistry } from '../../src/registry';

const policy = KpiGuardPolicySchema.parse({});
const kpis = (over: Partial<VersionKpis> = {}): VersionKpis => ({
  requests: 1000,
  errors: 5,
  p99Ms: 3,
  oodRequests: 10,
  predictionHistogram: [],
  ...over,
});

describe('judgeGuard: one kpiGuard window against absolute limits', () => {
  const E = 'champion.error-rate.absolute';
  const O = 'champion.ood-rate.absolute';
  const L = 'champion.latency.p99.absolute';
  const S = 'champion.sample-size';
  const { successful: ok, failed, inconclusive } = CheckPhase;
  it.each<[string, Partial<VersionKpis>, CheckPhase, Record<string, CheckPhase>]>([
    ['healthy window', {}, ok, { [E]: ok, [O]: ok, [L]: ok }],
    ['error rate at the ceiling exactly', { errors: 50 }, ok, { [E]: ok }],
    ['error rate 0.1 of 1000: Wilson low 0.083 > 0.05', { errors: 100 }, failed, { [E]: failed, [O]: ok }],
    [
      'error rate 0.07 of 100: above, but not significantly',
      { requests: 100, errors: 7, oodRequests: 1 },
      inconclusive,
      { [E]: inconclusive },
    ],
    [
      'every request failing, but too few requests',
      { requests: 40, errors: 40 },
      inconclusive,
      { [S]: inconclusive },
    ],
    ['OOD rate 0.3 of 1000', { oodRequests: 300 }, failed, { [O]: failed, [E]: ok }],
    ['p99 above its ceiling', { p99Ms: 300 }, failed, { [L]: failed }],
    ['p99 not measured', { p99Ms: Number.NaN }, inconclusive, { [L]: inconclusive }],
  ])('%s', (_name, over, phase, checks) => {
    const r = judgeGuard(kpis(over), policy);
    expect(r.phase).toBe(phase);
    for (const [name, p] of Object.entries(checks))
      expect(r.checks.find((c) => c.name === name)?.phase, name).toBe(p);
    if (phase !== failed) expect(r.checks.some((c) => c.phase === failed)).toBe(false);
  });

  it('a window below minRequests judges nothing else', () => {
    const r = judgeGuard(kpis({ requests: 49, errors: 49 }), policy);
    expect(r.checks.map((c) => c.name)).toEqual(['champion.sample-size']);
  });

  it('a failed rate names estimate, interval and ceiling', () => {
    const r = judgeGuard(kpis({ errors: 100 }), policy);
    expect(r.checks.find((c) => c.name === E)?.detail).toMatch(
      /^champion error-rate 0\.1 \(95% CI \[0\.08\d+, 0\.1\d+\], 100\/1000\) against the ceiling 0\.05$/,
    );
  });
});

describe('kpiGuard policy and input', () => {
  it('defaults', () => {
    expect(policy).toMatchObject({
      window: DEFAULT_KPI_GUARD_WINDOW,
      interval: DEFAULT_KPI_GUARD_INTERVAL,
      maxErrorRate: 0.05,
      maxOodRate: 0.2,
      maxP99Ms: 250,
      minRequests: 50,
    });
  });

  it.each([
    [{ window: '1m', interval: '2m' }, /interval: must not exceed window/],
    [{ window: '2h', interval: '1s' }, /interval: window \/ interval must be at most 1000/],
    [{ window: '0s' }, /window: must be longer than zero/],
    [{ maxErrorRate: 2 }, /maxErrorRate/],
    [{ guard: true }, /guard/],
  ])('refuses %j naming the field', (input, message) => {
    const r = KpiGuardPolicySchema.safeParse(input);
    expect(r.success).toBe(false);
    if (!r.success) expect(formatZodError(r.error)).toMatch(message);
  });

  it('needs a canary policy in the pipeline input', () => {
    const base = { model: 'fraud', dataset: { uri: '/d.csv' }, trigger: { kind: 'manual' }, kpiGuard: {} };
    const r = RetrainingInputSchema.safeParse(base);
    expect(r.success).toBe(false);
    if (!r.success) expect(formatZodError(r.error)).toMatch(/kpiGuard: needs a canary policy/);
    expect(RetrainingInputSchema.safeParse({ ...base, canary: {} }).success).toBe(true);
  });
});

describe('restoreChampion (registry activity)', () => {
  it('moves champion back to previous-champion once and tags the bad version; a retry moves nothing', async () => {
    const registry = new MemoryModelRegistry();
    await registry.ensureModel('m');
    const experimentId = await registry.ensureExperiment('m');
    for (const name of ['v1', 'v2']) {
      const run = await registry.createRun({ experimentId, runName: name, tags: {} });
      await registry.createVersion({ model: 'm', runId: run.runId, source: 'x', tags: {}, description: '' });
    }
    await registry.setAlias('m', Aliases.previousChampion, '1');
    await registry.setAlias('m', Aliases.champion, '2');
    const { restoreChampion } = createRegistryActivities({ registry });
    const input = { model: 'm', version: '2', reason: 'error rate 0.3' };
    expect(await restoreChampion(input)).toEqual({ moved: true, champion: '1' });
    // A retry (the first answer lost): champion no longer points at v2, so nothing moves.
    expect(await restoreChampion(input)).toEqual({ moved: false, champion: '1' });
    expect((await registry.findVersionByAlias('m', Aliases.champion))?.version).toBe('1');
    const bad = await registry.getVersion('m', '2');
    expect(bad.tags[VersionTags.outcome]).toBe('rolled-back');
    expect(bad.tags[VersionTags.outcomeReason]).toBe('error rate 0.3');
  });

  it('without a previous champion leaves the alias and still tags the version', async () => {
    const registry = new MemoryModelRegistry();
    await registry.ensureModel('m');
    const run = await registry.createRun({
      experimentId: await registry.ensureExperiment('m'),
      runName: 'a',
      tags: {},
    });
    await registry.createVersion({ model: 'm', runId: run.runId, source: 'x', tags: {}, description: '' });
    await registry.setAlias('m', Aliases.champion, '1');
    const { restoreChampion } = createRegistryActivities({ registry });
    expect(await restoreChampion({ model: 'm', version: '1', reason: 'r' })).toEqual({
      moved: false,
      champion: '1',
    });
    expect((await registry.getVersion('m', '1')).tags[VersionTags.outcome]).toBe('rolled-back');
  });
});
