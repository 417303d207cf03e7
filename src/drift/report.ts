/**
 * Drift reports: the full report on raw reference and current columns (every statistic, as scipy
 * would compute it, each column sorted once by radix), the window report against a stored profile
 * (O(bins)), and their JSON and self-contained HTML renderings (inline SVG histograms, the summary
 * table and the performance timeline; no script, no external asset).
 */
import { judgeDrift, type DriftPolicyInput, type DriftVerdict } from '../core/policy/drift';
import type { CbpeEstimate } from '../core/stats/cbpe';
import {
  compareWindowToProfile,
  profileCategorical,
  sortedNonNull,
  type ColumnarData,
  type FeatureDrift,
  type ReferenceProfile,
  type WindowSummary,
} from '../core/stats/drift-profile';
import {
  binCountsSorted,
  chiSquareHomogeneity,
  jensenShannonDistance,
  lInfinity,
  meanStd,
  normalisedWasserstein,
  psi,
  quantileEdges,
} from '../core/stats/drift-tests';
import { ksAndWasserstein, ksPValue } from '../core/stats/ks';

export interface FullFeatureDrift extends FeatureDrift {
  /** Every statistic computed for the feature (KS D and p, W1 raw and normalised, PSI; chi-square, JS, L-inf). */
  stats: Record<string, number>;
}

export interface PerformancePoint {
  from: string;
  to: string;
  metric: string;
  estimated?: number;
  trusted?: boolean;
  realized?: number;
  lower?: number;
  upper?: number;
}

export interface DriftReport {
  model: string;
  version?: string;
  window: { from: string; to: string; rows: number };
  verdict: DriftVerdict;
  features: FeatureDrift[];
  cbpe?: CbpeEstimate[];
  performance?: PerformancePoint[];
}

function numericFull(name: string, ref: Float64Array, cur: Float64Array): FullFeatureDrift {
  const a = sortedNonNull(ref);
  const b = sortedNonNull(cur);
  const { d, w1 } = ksAndWasserstein(a, b);
  const ks = ksPValue(a.length, b.length, d);
  const { mean, std } = meanStd(a);
  const w1n = normalisedWasserstein(w1, std, mean);
  const edges = quantileEdges(a);
  const rc = Array.from(binCountsSorted(edges, a));
  const cc = Array.from(binCountsSorted(edges, b));
  const p = psi(rc, cc);
  const tr = a.length;
  const tc = b.length;
  return {
    feature: name,
    kind: 'numeric',
    rows: b.length,
    test: 'ks',
    statistic: ks.statistic,
    pValue: ks.pValue,
    distanceName: 'wasserstein',
    distance: w1n,
    lInfinity: lInfinity(rc, cc),
    referenceShares: rc.map((c) => c / tr),
    windowShares: cc.map((c) => c / tc),
    labels: rc.map((_, i) =>
      i === 0
        ? `<= ${edges[0] ?? ''}`
        : i === edges.length
          ? `> ${edges[i - 1]}`
          : `(${edges[i - 1]}, ${edges[i]}]`,
    ),
    stats: {
      ks_d: ks.statistic,
      ks_p: ks.pValue,
      wasserstein: w1,
      wasserstein_norm: w1n,
      psi: p,
      nulls_ref: ref.length - a.length,
      nulls_cur: cur.length - b.length,
    },
  };
}

function categoricalFull(
  name: string,
  ref: ColumnarData['categorical'][string],
  cur: ColumnarData['categorical'][string],
): FullFeatureDrift {
  const prof = profileCategorical(name, ref);
  const index = new Map(prof.categories.map((c, i) => [c, i]));
  const cc = new Array<number>(prof.categories.length + 2).fill(0);
  for (const v of cur) {
    if (v === null) cc[prof.categories.length + 1]!++;
    else cc[index.get(v) ?? prof.categories.length]!++;
  }
  const rc = [...prof.counts, 0, prof.nulls];
  const chi = chiSquareHomogeneity(rc, cc);
  const js = jensenShannonDistance(rc, cc);
  const tr = rc.reduce((s, x) => s + x, 0);
  const tc = cc.reduce((s, x) => s + x, 0);
  return {
    feature: name,
    kind: 'categorical',
    rows: tc,
    test: 'chi-square',
    statistic: chi.statistic,
    pValue: chi.pValue,
    distanceName: 'jensen-shannon',
    distance: js,
    lInfinity: lInfinity(rc, cc),
    referenceShares: rc.map((c) => c / tr),
    windowShares: cc.map((c) => c / tc),
    labels: [...prof.categories, 'other', 'null'],
    stats: {
      chi2: chi.statistic,
      chi2_p: chi.pValue,
      df: chi.df,
      jensen_shannon: js,
      l_infinity: lInfinity(rc, cc),
    },
  };
}

/** Every feature of raw current data against raw reference data, judged by the policy. */
export function fullDriftReport(
  reference: ColumnarData,
  current: ColumnarData,
  policy: DriftPolicyInput = {},
): { features: FullFeatureDrift[]; verdict: DriftVerdict } {
  const features: FullFeatureDrift[] = [];
  for (const [name, col] of Object.entries(reference.numeric)) {
    const cur = current.numeric[name];
    if (cur) features.push(numericFull(name, col, cur));
  }
  for (const [name, col] of Object.entries(reference.categorical)) {
    const cur = current.categorical[name];
    if (cur) features.push(categoricalFull(name, col, cur));
  }
  return { features, verdict: judgeDrift(features, current.rows, policy) };
}

/** A window's drift against the stored profile. */
export function windowDrift(
  profile: ReferenceProfile,
  window: WindowSummary,
  policy: DriftPolicyInput = {},
): { features: FeatureDrift[]; verdict: DriftVerdict } {
  const features = compareWindowToProfile(profile, window);
  return { features, verdict: judgeDrift(features, window.rows, policy) };
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (v: number | undefined, d = 4): string =>
  v === undefined || !Number.isFinite(v)
    ? String(v)
    : Math.abs(v) < 1e-3 && v !== 0
      ? v.toExponential(2)
      : v.toFixed(d);

function histogram(f: FeatureDrift): string {
  const w = 420;
  const h = 120;
  const n = f.referenceShares.length;
  const max = Math.max(1e-9, ...f.referenceShares, ...f.windowShares);
  const bw = w / Math.max(1, n);
  let bars = '';
  for (let i = 0; i < n; i++) {
    const rh = (f.referenceShares[i]! / max) * (h - 10);
    const ch = (f.windowShares[i]! / max) * (h - 10);
    const label = esc(f.labels[i] ?? '');
    bars += `<rect x="${(i * bw).toFixed(1)}" y="${(h - rh).toFixed(1)}" width="${(bw / 2).toFixed(1)}" height="${rh.toFixed(1)}" fill="#7a9cc6"><title>reference ${label}: ${num(f.referenceShares[i])}</title></rect>`;
    bars += `<rect x="${(i * bw + bw / 2).toFixed(1)}" y="${(h - ch).toFixed(1)}" width="${(bw / 2).toFixed(1)}" height="${ch.toFixed(1)}" fill="#e08a4a"><title>current ${label}: ${num(f.windowShares[i])}</title></rect>`;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="${esc(f.feature)} histogram">${bars}</svg>`;
}

function timeline(points: readonly PerformancePoint[]): string {
  if (points.length === 0) return '<p>No performance points yet.</p>';
  const w = 640;
  const h = 160;
  const x = (i: number): number => (points.length === 1 ? w / 2 : (i / (points.length - 1)) * (w - 20) + 10);
  const y = (v: number): number => h - 10 - v * (h - 20);
  const path = (vals: (number | undefined)[]): string =>
    vals
      .map((v, i) => (v === undefined ? '' : `${x(i).toFixed(1)},${y(v).toFixed(1)}`))
      .filter(Boolean)
      .join(' ');
  const est = path(points.map((p) => p.estimated));
  const real = path(points.map((p) => p.realized));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="performance timeline"><polyline points="${est}" fill="none" stroke="#e08a4a" stroke-dasharray="4 3"/><polyline points="${real}" fill="none" stroke="#2b6"/></svg><p>dashed: CBPE estimate; solid: realized on delayed labels</p>`;
}

/** The report as one self-contained HTML page. */
export function renderDriftHtml(report: DriftReport): string {
  const rows = report.verdict.features
    .map((v) => {
      const f = report.features.find((x) => x.feature === v.feature);
      return `<tr class="${v.drifted ? 'drift' : ''}"><td>${esc(v.feature)}</td><td>${v.kind}</td><td>${f?.test ?? ''}</td><td>${num(f?.statistic)}</td><td>${num(v.pValue)}</td><td>${num(v.adjustedP)}</td><td>${v.distanceName} ${num(v.distance)}</td><td>${v.drifted ? 'drift' : 'ok'}</td></tr>`;
    })
    .join('\n');
  const hists = report.features
    .map((f) => `<section><h3>${esc(f.feature)}</h3>${histogram(f)}</section>`)
    .join('\n');
  const cbpe = (report.cbpe ?? [])
    .map(
      (c) =>
        `<li>${c.metric} at ${c.threshold}: ${num(c.value)} (${c.trusted ? 'trusted' : 'NOT trusted'}: ${esc(c.reasons.join('; '))})</li>`,
    )
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Drift report ${esc(report.model)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}tr.drift{background:#fde2d2}section{display:inline-block;margin:8px}</style></head><body>
<h1>Drift report: ${esc(report.model)}${report.version ? ` v${esc(report.version)}` : ''}</h1>
<p>Window ${esc(report.window.from)} to ${esc(report.window.to)}, ${report.window.rows} rows. Verdict: <strong>${report.verdict.status}</strong>. ${esc(report.verdict.reasons.join('; '))}</p>
<table><thead><tr><th>feature</th><th>kind</th><th>test</th><th>statistic</th><th>p</th><th>adjusted p</th><th>distance</th><th>result</th></tr></thead><tbody>
${rows}
</tbody></table>
<h2>Performance</h2><ul>${cbpe}</ul>${timeline(report.performance ?? [])}
<h2>Reference (blue) vs current (orange)</h2>
${hists}
</body></html>
`;
}
