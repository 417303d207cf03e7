/**
 * The dataset-level drift alarm's error rates and the CBPE estimate on the reference workload:
 * independent windows (seeds hashed), 200 drift-free and 200 with the generator's injected data
 * drift; CBPE coverage of the realized metric's 95% interval on drift-free windows and its trust
 * flag on concept-drift windows (the committed `good` fixture model plays the champion).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { runCbpeExperiment } from '../../src/drift/cbpe-experiment';
import { EXPERIMENT_DATA_DRIFT, runFalseAlarmExperiment } from '../../src/drift/experiment';
import { windowSeed } from '../../src/drift/seeds';

function correlation(x: number[], y: number[]): number {
  const n = x.length;
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

describe('drift alarm error rates', () => {
  it('hashed window seeds give uncorrelated first draws (plain consecutive seeds do not)', () => {
    // The generator's source: the first uniform draw of xoroshiro128+ seeded as the generator seeds it.
    const first = (seed: number): number => uniformFloat64(xoroshiro128plus(seed));
    const plain = Array.from({ length: 300 }, (_, i) => first(1000 + i));
    const plainNext = Array.from({ length: 300 }, (_, i) => first(1001 + i));
    const hashed = Array.from({ length: 300 }, (_, i) => first(windowSeed(7, i)));
    const hashedNext = Array.from({ length: 300 }, (_, i) => first(windowSeed(7, i + 1)));
    const rPlain = correlation(plain, plainNext);
    const rHashed = correlation(hashed, hashedNext);
    console.log(
      `first-draw correlation of neighbouring seeds: plain ${rPlain.toFixed(3)}, hashed ${rHashed.toFixed(3)}`,
    );
    expect(rPlain).toBeGreaterThan(0.9);
    expect(Math.abs(rHashed)).toBeLessThan(0.15);
  });

  it('fires on at most 5% of 200 drift-free windows and on at least 95% of drifted ones', () => {
    const r = runFalseAlarmExperiment();
    console.log(
      `drift alarm (Bonferroni, alpha ${r.alpha}, ${r.windowRows}-row windows): false alarms ${r.falseAlarms}/${r.windows} = ${(100 * r.falseAlarmRate).toFixed(1)}%, ` +
        `detections at dataDrift ${EXPERIMENT_DATA_DRIFT} ${r.detections}/${r.windows} = ${(100 * r.detectionRate).toFixed(1)}% (${r.elapsedMs} ms)`,
    );
    expect(r.falseAlarmRate).toBeLessThanOrEqual(0.05);
    expect(r.detectionRate).toBeGreaterThanOrEqual(0.95);
  });

  it('without the correction the same windows alarm far more often', () => {
    const r = runFalseAlarmExperiment({ windows: 100, policy: { correction: 'none' } });
    console.log(
      `uncorrected: false alarms ${r.falseAlarms}/${r.windows} = ${(100 * r.falseAlarmRate).toFixed(1)}%`,
    );
    expect(r.falseAlarmRate).toBeGreaterThan(0.2);
  });

  it('CBPE is within the realized 95% interval on >= 90% of drift-free windows and untrusted under concept drift', async () => {
    const r = await runCbpeExperiment(path.join(__dirname, '..', 'fixtures', 'models', 'good'));
    console.log(
      `CBPE on ${r.windows} drift-free windows: coverage precision ${(100 * r.coverage.precision).toFixed(1)}%, recall ${(100 * r.coverage.recall).toFixed(1)}%, ` +
        `accuracy ${(100 * r.coverage.accuracy).toFixed(1)}%; holdout check ECE ${r.holdout.checkEce.toFixed(4)} z ${r.holdout.checkZ.toFixed(2)}; ` +
        `untrusted on ${(100 * r.conceptDriftUntrusted).toFixed(1)}% of concept-drift windows`,
    );
    expect(r.holdout.trusted).toBe(true);
    for (const v of Object.values(r.coverage)) expect(v).toBeGreaterThanOrEqual(0.9);
    expect(r.driftFreeTrusted).toBe(1);
    expect(r.conceptDriftUntrusted).toBeGreaterThanOrEqual(0.95);
  });
});
