/**
 * Attribution drift and the attribution guardrail: pure functions of two models' global importances
 * (src/core/contracts/attribution.ts) and the policy. Sandbox-safe; never throws.
 *
 * - Drift: Spearman rank correlation of the global importances over the features both models have (average
 *   ranks for ties; NaN with fewer than two features or no spread), and the features whose share changed most.
 * - Guardrail (checks in the shared shape, severity `inconclusive`: a human must review, the gate does not
 *   promote on its own):
 *   - `guardrail.attribution.sensitive.<feature>`: a feature the policy marks sensitive carries more than
 *     `maxSensitiveShare` of the challenger's global importance;
 *   - `guardrail.attribution.proxy.<feature>`: a proxy-sensitive feature's share rose by more than
 *     `maxProxyShareIncrease` against the champion (without a champion: its share is above that bound);
 *   - `guardrail.attribution.measured`: no attributions for the challenger while `requireAttributions` is set.
 * - A policy feature the model does not have is not judged (listed in the check detail of `measured`).
 */
import type {
  AttributionDrift,
  AttributionGuardrailInput,
  AttributionShift,
  AttributionSummary,
} from '../contracts/attribution';
import { AttributionGuardrailSchema, DEFAULT_TOP_SHIFTS } from '../contracts/attribution';
import { judgedPhase, type Check } from '../contracts/checks';

/** Slack on share comparisons so rounding cannot flip a check. */
const SHARE_TOLERANCE = 1e-12;

function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const out = new Array<number>(values.length).fill(0);
  let k = 0;
  while (k < order.length) {
    let e = k;
    while (e + 1 < order.length && (order[e + 1] as { v: number }).v === (order[k] as { v: number }).v) e++;
    const avg = (k + e) / 2 + 1;
    for (let t = k; t <= e; t++) out[(order[t] as { i: number }).i] = avg;
    k = e + 1;
  }
  return out;
}

/** Spearman's rank correlation (Pearson on average ranks); NaN with fewer than 2 values or no spread. */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length || a.length < 2) return NaN;
  const ra = ranks(a);
  const rb = ranks(b);
  const n = a.length;
  const ma = ra.reduce((s, v) => s + v, 0) / n;
  const mb = rb.reduce((s, v) => s + v, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = (ra[i] as number) - ma;
    const db = (rb[i] as number) - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : NaN;
}

const share = (s: AttributionSummary, f: string): number | undefined => s.global[f]?.share;

/** Champion against challenger: rank correlation and the `top` largest share changes. */
export function attributionDrift(
  champion: AttributionSummary,
  challenger: AttributionSummary,
  top: number = DEFAULT_TOP_SHIFTS,
): AttributionDrift {
  const common = challenger.features.filter((f) => champion.global[f] && challenger.global[f]);
  const a = common.map((f) => share(champion, f) as number);
  const b = common.map((f) => share(challenger, f) as number);
  const shifts: AttributionShift[] = common
    .map((feature, i) => ({
      feature,
      champion: a[i] as number,
      challenger: b[i] as number,
      change: (b[i] as number) - (a[i] as number),
    }))
    .sort((x, y) => Math.abs(y.change) - Math.abs(x.change) || (x.feature < y.feature ? -1 : 1))
    .slice(0, Math.max(0, top));
  return { rankCorrelation: spearman(a, b), shifts };
}

const pct = (v: number): string => `${Number((100 * v).toPrecision(3))}%`;

function check(
  passed: boolean,
  name: string,
  observed: number | null,
  threshold: number,
  detail: string,
): Check {
  return {
    name,
    passed,
    phase: judgedPhase(passed, 'inconclusive'),
    severity: 'inconclusive',
    observed,
    threshold,
    detail,
  };
}

/** The guardrail's checks for a challenger (and champion, when there is one). */
export function attributionChecks(
  policyInput: AttributionGuardrailInput | undefined,
  challenger: AttributionSummary | undefined,
  champion: AttributionSummary | undefined,
): Check[] {
  if (policyInput === undefined) return [];
  const parsed = AttributionGuardrailSchema.safeParse(policyInput);
  if (!parsed.success) {
    return [
      {
        name: 'guardrail.attribution.policy',
        passed: false,
        phase: 'error',
        severity: 'inconclusive',
        observed: null,
        threshold: null,
        detail: `invalid attribution guardrail: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      },
    ];
  }
  const policy = parsed.data;
  const checks: Check[] = [];
  if (challenger === undefined) {
    if (policy.requireAttributions)
      checks.push(
        check(
          false,
          'guardrail.attribution.measured',
          null,
          1,
          'attributions not measured for the challenger but the policy requires them: review',
        ),
      );
    return checks;
  }
  const drift = champion ? attributionDrift(champion, challenger) : undefined;
  const driftNote = drift
    ? `; rank correlation with the champion's importances ${Number.isNaN(drift.rankCorrelation) ? 'n/a' : drift.rankCorrelation.toFixed(3)}, largest shifts ${drift.shifts.map((s) => `${s.feature} ${s.change >= 0 ? '+' : ''}${pct(s.change)}`).join(', ')}`
    : '';
  for (const f of policy.sensitiveFeatures) {
    const s = share(challenger, f);
    if (s === undefined) continue;
    const ok = s <= policy.maxSensitiveShare + SHARE_TOLERANCE;
    checks.push(
      check(
        ok,
        `guardrail.attribution.sensitive.${f}`,
        s,
        policy.maxSensitiveShare,
        ok
          ? `sensitive feature ${f} carries ${pct(s)} of the challenger's global importance, within ${pct(policy.maxSensitiveShare)}${driftNote}`
          : `requires review: the challenger leans on sensitive feature ${f} (${pct(s)} of global importance ${challenger.method}, above ${pct(policy.maxSensitiveShare)}${champion ? `; champion ${pct(share(champion, f) ?? 0)}` : ''})${driftNote}`,
      ),
    );
  }
  for (const f of policy.proxyFeatures) {
    const s = share(challenger, f);
    if (s === undefined) continue;
    const before = champion ? (share(champion, f) ?? 0) : 0;
    const rise = s - before;
    const ok = rise <= policy.maxProxyShareIncrease + SHARE_TOLERANCE;
    const vs = champion
      ? `rose from ${pct(before)} to ${pct(s)}`
      : `is ${pct(s)} without a champion to compare with`;
    checks.push(
      check(
        ok,
        `guardrail.attribution.proxy.${f}`,
        rise,
        policy.maxProxyShareIncrease,
        ok
          ? `proxy-sensitive feature ${f}: share ${vs}, within an increase of ${pct(policy.maxProxyShareIncrease)}${driftNote}`
          : `requires review: the challenger leans more on proxy-sensitive feature ${f} (share ${vs}, allowed increase ${pct(policy.maxProxyShareIncrease)})${driftNote}`,
      ),
    );
  }
  return checks;
}
