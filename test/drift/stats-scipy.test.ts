/**
 * The drift statistics against scipy on generated cases (ties, tiny samples, constant columns, both
 * the exact and the asymptotic KS regime): statistic within 1e-9, p-value within 1e-6 relative or
 * 1e-12 absolute. scipy runs in the `drift` reference venv (deploy/stack/reference/drift.txt).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ksAndWasserstein, ksTwoSample } from '../../src/core/stats/ks';
import { sortFloat64 } from '../../src/core/stats/sort';
import {
  chiSquareGoodnessOfFit,
  chiSquareHomogeneity,
  jensenShannonDistance,
  wasserstein1,
} from '../../src/core/stats/drift-tests';
import { ensureReferenceEnv } from '../../src/stack/provision';

const Num = z.number();
const Case = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('ks'),
    name: z.string(),
    a: z.array(Num),
    b: z.array(Num),
    statistic: Num,
    pvalue: Num,
    w1: Num,
  }),
  z.object({
    kind: z.literal('chisquare'),
    name: z.string(),
    observed: z.array(Num),
    expected: z.array(Num),
    statistic: Num,
    pvalue: Num,
  }),
  z.object({
    kind: z.literal('homogeneity'),
    name: z.string(),
    a: z.array(Num),
    b: z.array(Num),
    statistic: Num,
    pvalue: Num,
    df: Num,
  }),
  z.object({ kind: z.literal('js'), name: z.string(), p: z.array(Num), q: z.array(Num), distance: Num }),
]);

function loadCases(): z.infer<typeof Case>[] {
  const python = ensureReferenceEnv('drift');
  const r = spawnSync(python, [path.join(__dirname, 'scipy_cases.py'), '7'], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0) throw new Error(`scipy_cases.py failed: ${r.stderr}`);
  return z.array(Case).parse(JSON.parse(r.stdout));
}

// The radix sort (used from 4096 values up) orders the larger cases.
const sorted = (x: number[]): Float64Array => sortFloat64(Float64Array.from(x));
const STAT_TOL = 1e-9;
const P_REL = 1e-6;
const P_ABS = 1e-12;

function pClose(ours: number, theirs: number): boolean {
  return Math.abs(ours - theirs) <= Math.max(P_ABS, P_REL * Math.abs(theirs));
}

describe('drift statistics match scipy', () => {
  const cases = loadCases();
  const failures: string[] = [];
  let exact = 0;
  let asymptotic = 0;
  for (const c of cases) {
    if (c.kind === 'ks') {
      const a = sorted(c.a);
      const b = sorted(c.b);
      const r = ksTwoSample(a, b);
      if (r.method === 'exact') exact++;
      else asymptotic++;
      if (Math.abs(r.statistic - c.statistic) > STAT_TOL)
        failures.push(`${c.name}: D ${r.statistic} vs ${c.statistic}`);
      if (!pClose(r.pValue, c.pvalue)) failures.push(`${c.name}: p ${r.pValue} vs ${c.pvalue} (${r.method})`);
      const w = wasserstein1(a, b);
      const fused = ksAndWasserstein(a, b);
      if (Math.abs(fused.w1 - w) > 1e-12 * Math.max(1, w))
        failures.push(`${c.name}: fused W1 ${fused.w1} vs ${w}`);
      if (Math.abs(w - c.w1) > STAT_TOL * Math.max(1, Math.abs(c.w1)))
        failures.push(`${c.name}: W1 ${w} vs ${c.w1}`);
    } else if (c.kind === 'chisquare') {
      const r = chiSquareGoodnessOfFit(c.observed, c.expected);
      if (Math.abs(r.statistic - c.statistic) > STAT_TOL * Math.max(1, c.statistic))
        failures.push(`${c.name}: X2 ${r.statistic} vs ${c.statistic}`);
      if (!pClose(r.pValue, c.pvalue)) failures.push(`${c.name}: p ${r.pValue} vs ${c.pvalue}`);
    } else if (c.kind === 'homogeneity') {
      const r = chiSquareHomogeneity(c.a, c.b);
      if (Math.abs(r.statistic - c.statistic) > STAT_TOL * Math.max(1, c.statistic))
        failures.push(`${c.name}: X2 ${r.statistic} vs ${c.statistic}`);
      if (r.df !== c.df) failures.push(`${c.name}: df ${r.df} vs ${c.df}`);
      if (!pClose(r.pValue, c.pvalue)) failures.push(`${c.name}: p ${r.pValue} vs ${c.pvalue}`);
    } else {
      const d = jensenShannonDistance(c.p, c.q);
      if (Math.abs(d - c.distance) > STAT_TOL) failures.push(`${c.name}: JS ${d} vs ${c.distance}`);
    }
  }

  it('covers at least 100 cases, both KS regimes', () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
    expect(exact).toBeGreaterThan(20);
    expect(asymptotic).toBeGreaterThan(5);
    console.log(`scipy parity: ${cases.length} cases (${exact} exact KS, ${asymptotic} asymptotic KS)`);
  });

  it('radix sort orders like the comparison sort (negatives, -0, infinities, ties)', () => {
    const x = new Float64Array(20_000);
    for (let i = 0; i < x.length; i++)
      x[i] = i % 7 === 0 ? Math.round(Math.sin(i) * 5) : Math.sin(i * 1.7) * 10 ** ((i % 13) - 6);
    x.set([-0, 0, Infinity, -Infinity, Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_VALUE], 0);
    const ours = sortFloat64(x.slice());
    const native = x.slice().sort();
    expect(Array.from(ours).map(String)).toEqual(Array.from(native).map(String));
  });

  it('agrees on every case', () => {
    expect(failures).toEqual([]);
  });
});
