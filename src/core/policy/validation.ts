/**
 * The dataset validation judge: a pure function of a {@link DatasetProfile} and the {@link FeatureSpec} it was
 * measured against, returning every check with its observed value, its threshold and a message naming the
 * column or batch. Measuring lives in `src/data/profile.ts`; this module only decides.
 *
 * Rules:
 * - Sandbox-safe and deterministic: no I/O, no clocks, no randomness; same inputs, same report.
 * - Rates are shares of the rows a check is about (all rows, parsed values, non-missing values, labelled rows);
 *   a check fails when the observed value is strictly worse than its threshold.
 * - Every check is reported, passed or not, so the report reads as the full list of what was verified.
 * - Checks have the shared shape of src/core/contracts/checks.ts (severity `failed`; the report's `phase` is the
 *   worst of them) and keep `check` and `message`, which the workflow and the audit log read.
 *
 * Poisoning screen. Clean ingestion batches (values of the spec's `batchColumn`) are exchangeable draws from
 * one distribution, so a batch that stands out far beyond sampling noise is suspect. Only batches with at
 * least `poisoning.minBatchRows` rows are judged, and the between-batch comparisons (1, 2) need at least
 * `poisoning.minBatches` of them.
 *
 * Batch statistics are compared with a robust reference: the median of the judged batches' values, not the
 * mean of the other batches, so one poisoned batch can neither hide itself by inflating the reference nor make
 * the clean batches look shifted (masking and swamping). For a batch statistic v_i over n_i rows, with the
 * median c, a per-row noise scale s and N rows over all judged batches:
 *
 *     z_i = (v_i - c) / (s * sqrt(1 / n_i + pi / (2 N)))
 *
 * where pi / (2N) is the large-sample variance of a median of means relative to one row. A batch fails when
 * |z_i| exceeds the threshold AND the standardised effect is at least `poisoning.minEffectSize` (Cohen's d for
 * means, Cohen's h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2)) for proportions): with big batches tiny, harmless
 * differences become significant, so significance alone is not enough.
 * 1. Label rate (`poisoning.label-rate`): v_i is the batch's positive rate and s^2 = p(1 - p) with p the pooled
 *    rate. Label flipping moves a batch's rate by far more than binomial noise. Threshold `maxLabelRateZ`.
 * 2. Feature shift (`poisoning.feature-shift`): for each numeric feature, v_i is the batch mean on the
 *    signed-log scale (see `signedLog1p`) and s^2 the median within-batch variance; for each category of each
 *    categorical feature (and the unknown bucket), v_i is its share and s^2 = p(1 - p) with p its pooled share
 *    (categories seen fewer than {@link MIN_CATEGORY_COUNT_FOR_SHIFT} times are skipped). A crafted cluster
 *    injected into a batch drags its means and category shares away. The batch's most significant shift is
 *    reported. Threshold `maxFeatureShiftZ`, higher than the label's since many features are tested.
 * 3. Repeated feature vectors (`poisoning.repeated-vectors`): the share of a batch's rows whose feature vector
 *    equals an earlier row's. With continuous features clean data almost never repeats; replayed or templated
 *    injections do. Fails above `maxRepeatedVectorRate`.
 * 4. Conflicting labels (`poisoning.conflicting-labels`): the share of a batch's labelled rows whose feature
 *    vector was seen earlier with the other label, the signature of copied rows with flipped labels. Fails
 *    above `maxConflictingLabelRate`.
 * Checks 3 and 4 also run over the whole dataset (no batch), so they apply without a batch column.
 */
import {
  VALIDATION_CHECKS as C,
  inverseSignedLog1p,
  type BatchProfile,
  type DatasetProfile,
  type FeatureSpec,
  type ValidationCheck,
  type ValidationReport,
} from '../contracts/feature-spec';
import { CheckPhase, judgedPhase, worstPhaseOf } from '../contracts/checks';

/** A check as measured below, before the shared check fields are added (see {@link toValidationCheck}). */
type MeasuredCheck = Omit<ValidationCheck, 'name' | 'phase' | 'severity' | 'detail'>;

/** A category seen fewer times than this across the judged batches cannot shift one measurably: not tested. */
export const MIN_CATEGORY_COUNT_FOR_SHIFT = 10;
/** |z| values are capped here (a zero-variance comparison is infinitely significant) so reports stay JSON. */
export const MAX_REPORTED_Z = 1e6;

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const fmt = (x: number): string => (Number.isInteger(x) ? String(x) : x.toPrecision(4));
const rate = (part: number, whole: number): number => (whole > 0 ? part / whole : 0);
const capZ = (z: number): number =>
  Number.isNaN(z) ? 0 : Math.max(-MAX_REPORTED_Z, Math.min(MAX_REPORTED_Z, z));

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Cohen's h, the effect size of a difference between two proportions. */
export function cohenH(p1: number, p2: number): number {
  return 2 * Math.asin(Math.sqrt(p1)) - 2 * Math.asin(Math.sqrt(p2));
}

/**
 * The robust z of each batch statistic against the median of all of them (see the module comment):
 * `values[i]` over `counts[i]` rows, `scale` the per-row standard deviation under the null.
 */
export function robustBatchZ(
  values: readonly number[],
  counts: readonly number[],
  scale: number,
): { center: number; z: number[] } {
  const center = median(values);
  const total = counts.reduce((a, b) => a + b, 0);
  const z = values.map((v, i) => {
    const n = counts[i] ?? 0;
    const diff = v - center;
    if (n <= 0 || diff === 0) return 0;
    const se = scale * Math.sqrt(1 / n + Math.PI / (2 * total));
    return capZ(se > 0 ? diff / se : diff > 0 ? Infinity : -Infinity);
  });
  return { center, z };
}

/** One batch's most significant deviation for a check, and whether it fails. */
interface Finding {
  z: number;
  effect: number;
  column: string;
  describe: string;
}

const isFailing = (f: Finding, maxZ: number, minEffect: number): boolean =>
  Math.abs(f.z) > maxZ && Math.abs(f.effect) >= minEffect;

/** Keeps the failing finding with the largest |z|, else the largest |z| overall. */
function keepWorst(current: Finding | undefined, next: Finding, maxZ: number, minEffect: number): Finding {
  if (current === undefined) return next;
  const a = isFailing(current, maxZ, minEffect);
  const b = isFailing(next, maxZ, minEffect);
  if (a !== b) return b ? next : current;
  return Math.abs(next.z) > Math.abs(current.z) ? next : current;
}

/** Label-rate deviation of each judged batch. */
function labelRateFindings(batches: BatchProfile[], labelColumn: string): Array<Finding | undefined> {
  const labelled = batches.map((b) => b.positives + b.negatives);
  if (labelled.some((n) => n === 0)) return batches.map(() => undefined);
  const positives = batches.reduce((s, b) => s + b.positives, 0);
  const pooled = rate(
    positives,
    labelled.reduce((s, n) => s + n, 0),
  );
  const rates = batches.map((b, i) => rate(b.positives, labelled[i] ?? 0));
  const { center, z } = robustBatchZ(rates, labelled, Math.sqrt(pooled * (1 - pooled)));
  return batches.map((b, i) => ({
    z: z[i] ?? 0,
    effect: cohenH(rates[i] ?? 0, center),
    column: labelColumn,
    describe: `label rate ${pct(rates[i] ?? 0)} vs ${pct(center)} (median of batches)`,
  }));
}

/** Most significant feature shift of each judged batch. */
function featureShiftFindings(
  batches: BatchProfile[],
  maxZ: number,
  minEffect: number,
): Array<Finding | undefined> {
  const worst: Array<Finding | undefined> = batches.map(() => undefined);
  const first = batches[0];
  if (first === undefined) return worst;

  first.numeric.forEach((stats, k) => {
    const per = batches.map((b) => b.numeric[k] ?? { column: stats.column, count: 0, mean: 0, m2: 0 });
    if (per.some((m) => m.count < 2)) return;
    const scale = Math.sqrt(median(per.map((m) => m.m2 / (m.count - 1))));
    const { center, z } = robustBatchZ(
      per.map((m) => m.mean),
      per.map((m) => m.count),
      scale,
    );
    per.forEach((m, i) => {
      const finding: Finding = {
        z: z[i] ?? 0,
        effect: scale > 0 ? (m.mean - center) / scale : m.mean === center ? 0 : Infinity,
        column: stats.column,
        describe:
          `column "${stats.column}" log-scale mean ~${fmt(inverseSignedLog1p(m.mean))} vs ` +
          `~${fmt(inverseSignedLog1p(center))} (median of batches)`,
      };
      worst[i] = keepWorst(worst[i], finding, maxZ, minEffect);
    });
  });

  first.categorical.forEach((stats, k) => {
    const per = batches.map((b) => b.categorical[k]);
    const totals = per.map((c) => c?.count ?? 0);
    if (totals.some((n) => n === 0)) return;
    const all = totals.reduce((s, n) => s + n, 0);
    const slots = stats.categories.length + 1;
    for (let j = 0; j < slots; j += 1) {
      const counts = per.map((c) =>
        j < stats.categories.length ? (c?.categories[j]?.count ?? 0) : (c?.unknown ?? 0),
      );
      const occurrences = counts.reduce((s, n) => s + n, 0);
      if (occurrences < MIN_CATEGORY_COUNT_FOR_SHIFT) continue;
      const pooled = occurrences / all;
      const shares = counts.map((x, i) => rate(x, totals[i] ?? 0));
      const { center, z } = robustBatchZ(shares, totals, Math.sqrt(pooled * (1 - pooled)));
      const value = j < stats.categories.length ? `"${stats.categories[j]?.value}"` : 'unknown categories';
      shares.forEach((share, i) => {
        const finding: Finding = {
          z: z[i] ?? 0,
          effect: cohenH(share, center),
          column: stats.column,
          describe: `column "${stats.column}" share of ${value} ${pct(share)} vs ${pct(center)} (median of batches)`,
        };
        worst[i] = keepWorst(worst[i], finding, maxZ, minEffect);
      });
    }
  });
  return worst;
}

function schemaAndQualityChecks(p: DatasetProfile, spec: FeatureSpec, checks: MeasuredCheck[]): void {
  const q = spec.quality;
  const specRef = `feature spec ${spec.name}@${spec.version}`;

  if (p.missingColumns.length === 0) {
    checks.push({
      check: C.missingColumn,
      passed: true,
      observed: 0,
      threshold: 0,
      message: `all columns of ${specRef} are present`,
    });
  }
  for (const column of p.missingColumns) {
    checks.push({
      check: C.missingColumn,
      column,
      passed: false,
      observed: 'absent',
      threshold: 'present',
      message: `column "${column}" is missing from the header (required by ${specRef})`,
    });
  }
  if (p.unexpectedColumns.length === 0 || q.allowUnexpectedColumns) {
    checks.push({
      check: C.unexpectedColumn,
      passed: true,
      observed: p.unexpectedColumns.length,
      threshold: q.allowUnexpectedColumns ? 'any' : 0,
      message:
        p.unexpectedColumns.length === 0
          ? 'no columns outside the spec'
          : `columns outside the spec ignored (allowed): ${p.unexpectedColumns.join(', ')}`,
    });
  } else {
    for (const column of p.unexpectedColumns) {
      checks.push({
        check: C.unexpectedColumn,
        column,
        passed: false,
        observed: 'present',
        threshold: 'absent',
        message: `column "${column}" is not part of ${specRef} (quality.allowUnexpectedColumns is false)`,
      });
    }
  }
  const ragged = p.firstRaggedRow;
  checks.push({
    check: C.raggedRows,
    passed: p.raggedRows === 0,
    observed: p.raggedRows,
    threshold: 0,
    message:
      ragged === undefined
        ? 'every row has as many fields as the header'
        : `${p.raggedRows} row(s) have a different number of fields than the header (${p.header.length} ` +
          `columns); first at line ${ragged.line} with ${ragged.fields} fields; they were skipped`,
  });

  checks.push({
    check: C.minRows,
    passed: p.rows >= q.minRows,
    observed: p.rows,
    threshold: q.minRows,
    message:
      p.rows >= q.minRows
        ? `${p.rows} rows (at least ${q.minRows} required)`
        : `only ${p.rows} rows; at least ${q.minRows} required`,
  });

  for (const col of p.columns) {
    const feature = spec.features.find((f) => f.name === col.name);
    if (feature === undefined) continue;
    const nullRate = rate(col.missing, p.rows);
    checks.push({
      check: C.nullRate,
      column: col.name,
      passed: nullRate <= feature.maxNullRate,
      observed: nullRate,
      threshold: feature.maxNullRate,
      message:
        `column "${col.name}": ${col.missing} of ${p.rows} values missing (${pct(nullRate)}); ` +
        `allowed ${pct(feature.maxNullRate)}`,
    });

    if (col.kind === 'numeric' && feature.kind === 'numeric') {
      const typeRate = rate(col.typeErrors, p.rows);
      const first = col.firstTypeError;
      checks.push({
        check: C.typeErrors,
        column: col.name,
        passed: typeRate <= q.maxTypeErrorRate,
        observed: typeRate,
        threshold: q.maxTypeErrorRate,
        message:
          `column "${col.name}" (numeric): ${col.typeErrors} of ${p.rows} values are not numbers ` +
          `(${pct(typeRate)})${first ? `, first at line ${first.line}: "${first.value}"` : ''}; ` +
          `allowed ${pct(q.maxTypeErrorRate)}`,
      });
      if (feature.min !== undefined || feature.max !== undefined) {
        const outside = col.belowMin + col.aboveMax;
        const outRate = rate(outside, col.count);
        const range = `[${feature.min ?? '-inf'}, ${feature.max ?? 'inf'}]`;
        const seen = col.count > 0 ? ` (observed min ${col.min}, max ${col.max})` : '';
        const firstOut = col.firstOutOfRange;
        checks.push({
          check: C.range,
          column: col.name,
          passed: outRate <= q.maxOutOfRangeRate,
          observed: outRate,
          threshold: q.maxOutOfRangeRate,
          message:
            `column "${col.name}": ${outside} of ${col.count} values outside ${range} (${pct(outRate)})` +
            `${seen}${firstOut ? `, first at line ${firstOut.line}: ${firstOut.value}` : ''}; ` +
            `allowed ${pct(q.maxOutOfRangeRate)}`,
        });
      }
    } else if (col.kind === 'categorical' && feature.kind === 'categorical') {
      const unknownRate = rate(col.unknown, col.count);
      const examples = col.unknownValues
        .slice(0, 5)
        .map((u) => `"${u.value}" x${u.count}`)
        .join(', ');
      checks.push({
        check: C.unknownCategories,
        column: col.name,
        passed: unknownRate <= feature.maxUnknownRate,
        observed: unknownRate,
        threshold: feature.maxUnknownRate,
        message:
          `column "${col.name}": ${col.unknown} of ${col.count} values outside the known categories ` +
          `(${pct(unknownRate)})${examples ? `: ${examples}` : ''}; allowed ${pct(feature.maxUnknownRate)}`,
      });
    }
  }

  const dupRate = rate(p.duplicateRows, p.rows);
  checks.push({
    check: C.duplicateRows,
    passed: dupRate <= q.maxDuplicateRate,
    observed: dupRate,
    threshold: q.maxDuplicateRate,
    message:
      `${p.duplicateRows} of ${p.rows} rows (${pct(dupRate)}) repeat an earlier row exactly; ` +
      `allowed ${pct(q.maxDuplicateRate)}`,
  });
  if (p.duplicateIds !== null && spec.idColumn !== undefined) {
    checks.push({
      check: C.duplicateIds,
      column: spec.idColumn,
      passed: p.duplicateIds === 0,
      observed: p.duplicateIds,
      threshold: 0,
      message: `id column "${spec.idColumn}": ${p.duplicateIds} row(s) reuse an earlier row's id with other content`,
    });
  }

  const label = p.label;
  if (label === null) return;
  const { positiveValue, negativeValue } = spec.label;
  if (negativeValue !== undefined) {
    const first = label.firstInvalid;
    checks.push({
      check: C.labelValues,
      column: label.column,
      passed: label.invalid === 0,
      observed: label.invalid,
      threshold: 0,
      message:
        `label column "${label.column}": ${label.invalid} value(s) are neither ${positiveValue} nor ` +
        `${negativeValue}${first ? `, first at line ${first.line}: "${first.value}"` : ''}`,
    });
  }
  const missingRate = rate(label.missing, p.rows);
  checks.push({
    check: C.labelMissing,
    column: label.column,
    passed: missingRate <= q.maxLabelMissingRate,
    observed: missingRate,
    threshold: q.maxLabelMissingRate,
    message:
      `label column "${label.column}": ${label.missing} of ${p.rows} rows unlabelled (${pct(missingRate)}); ` +
      `allowed ${pct(q.maxLabelMissingRate)}`,
  });
  const labelled = label.positive + label.negative;
  const positiveRate = rate(label.positive, labelled);
  const { min, max } = q.labelRate;
  const balanced = labelled > 0 && positiveRate >= min && positiveRate <= max;
  checks.push({
    check: C.labelRate,
    column: label.column,
    passed: balanced,
    observed: positiveRate,
    threshold: `[${min}, ${max}]`,
    message:
      `label column "${label.column}": positive rate ${pct(positiveRate)} (${label.positive} of ${labelled} ` +
      `labelled rows); allowed ${pct(min)} to ${pct(max)}`,
  });
}

function poisoningChecks(p: DatasetProfile, spec: FeatureSpec, checks: MeasuredCheck[]): void {
  const t = spec.poisoning;
  const labelled = p.label === null ? 0 : p.label.positive + p.label.negative;
  const repeated = rate(p.repeatedVectors, p.rows);
  checks.push({
    check: C.poisonRepeatedVectors,
    passed: repeated <= t.maxRepeatedVectorRate,
    observed: repeated,
    threshold: t.maxRepeatedVectorRate,
    message:
      `dataset: ${p.repeatedVectors} of ${p.rows} rows (${pct(repeated)}) repeat an earlier row's feature ` +
      `vector; allowed ${pct(t.maxRepeatedVectorRate)}`,
  });
  const conflicting = rate(p.conflictingLabels, labelled);
  checks.push({
    check: C.poisonConflictingLabels,
    passed: conflicting <= t.maxConflictingLabelRate,
    observed: conflicting,
    threshold: t.maxConflictingLabelRate,
    message:
      `dataset: ${p.conflictingLabels} of ${labelled} labelled rows (${pct(conflicting)}) carry the other ` +
      `label than an identical earlier feature vector; allowed ${pct(t.maxConflictingLabelRate)}`,
  });

  if (spec.batchColumn === undefined || p.batchColumn === null) {
    checks.push({
      check: C.poisonBatches,
      passed: true,
      observed: 'n/a',
      threshold: 'n/a',
      message:
        spec.batchColumn === undefined
          ? 'no batch column in the spec: the per-batch poisoning screen does not apply'
          : `batch column "${spec.batchColumn}" is absent: the per-batch poisoning screen was skipped`,
    });
    return;
  }
  const batchColumn = p.batchColumn;
  const judged = p.batches.filter((b) => b.rows >= t.minBatchRows);
  const compared = judged.length >= t.minBatches;
  checks.push({
    check: C.poisonBatches,
    column: batchColumn,
    passed: p.untrackedBatchRows === 0,
    observed: p.untrackedBatchRows,
    threshold: 0,
    message:
      p.untrackedBatchRows > 0
        ? `column "${batchColumn}": ${p.untrackedBatchRows} rows belong to batches beyond the ` +
          `${p.batches.length} profiled ones and could not be screened`
        : `${p.batches.length} batch(es) in column "${batchColumn}", ${judged.length} with at least ` +
          `${t.minBatchRows} rows judged` +
          (compared ? '' : `; fewer than ${t.minBatches}: batches were not compared with each other`),
  });

  const labelColumn = p.label?.column ?? spec.label.column;
  const labelFindings = compared && p.label !== null ? labelRateFindings(judged, labelColumn) : [];
  const shiftFindings = compared ? featureShiftFindings(judged, t.maxFeatureShiftZ, t.minEffectSize) : [];

  judged.forEach((b, i) => {
    const batch = b.batch;
    const name = `batch "${batch}"`;
    const effectNote = (f: Finding, maxZ: number): string =>
      `(z = ${f.z.toFixed(2)}, effect ${f.effect.toFixed(2)}); flagged when |z| > ${maxZ} and ` +
      `effect >= ${t.minEffectSize}`;

    const pushFinding = (check: string, f: Finding | undefined, maxZ: number): void => {
      if (f === undefined) return;
      checks.push({
        check,
        column: f.column,
        batch,
        passed: !isFailing(f, maxZ, t.minEffectSize),
        observed: f.z,
        threshold: maxZ,
        message: `${name}: ${f.describe} ${effectNote(f, maxZ)}`,
      });
    };
    pushFinding(C.poisonLabelRate, labelFindings[i], t.maxLabelRateZ);
    pushFinding(C.poisonFeatureShift, shiftFindings[i], t.maxFeatureShiftZ);

    const repeatedRate = rate(b.repeatedVectors, b.rows);
    checks.push({
      check: C.poisonRepeatedVectors,
      column: batchColumn,
      batch,
      passed: repeatedRate <= t.maxRepeatedVectorRate,
      observed: repeatedRate,
      threshold: t.maxRepeatedVectorRate,
      message:
        `${name}: ${b.repeatedVectors} of ${b.rows} rows (${pct(repeatedRate)}) repeat an earlier row's ` +
        `feature vector; allowed ${pct(t.maxRepeatedVectorRate)}`,
    });
    const nb = b.positives + b.negatives;
    const conflictRate = rate(b.conflictingLabels, nb);
    checks.push({
      check: C.poisonConflictingLabels,
      column: batchColumn,
      batch,
      passed: conflictRate <= t.maxConflictingLabelRate,
      observed: conflictRate,
      threshold: t.maxConflictingLabelRate,
      message:
        `${name}: ${b.conflictingLabels} of ${nb} labelled rows (${pct(conflictRate)}) carry the other label ` +
        `than an identical earlier feature vector; allowed ${pct(t.maxConflictingLabelRate)}`,
    });
  });
}

/** The shared check fields of a carried-out validation check (severity `failed`: a failure rejects the data). */
function toValidationCheck(c: MeasuredCheck): ValidationCheck {
  return {
    ...c,
    name: c.check,
    phase: judgedPhase(c.passed, CheckPhase.failed),
    severity: CheckPhase.failed,
    detail: c.message,
  };
}

/** A report whose `ok` and `phase` follow from its checks. */
function reportOf(checks: ValidationCheck[]): ValidationReport {
  return { ok: checks.every((c) => c.passed), phase: worstPhaseOf(checks), checks };
}

/**
 * A report of one check that did not pass: the dataset could not be judged at all (unreadable, corrupt, wrong
 * hash). Its phase is `error` (could not be checked) unless the caller knows it is a definite `failed` (a
 * content hash that does not match).
 */
export function failedReport(
  check: string,
  observed: string,
  threshold: string,
  message: string,
  phase: typeof CheckPhase.error | typeof CheckPhase.failed = CheckPhase.error,
): ValidationReport {
  return reportOf([
    {
      check,
      name: check,
      passed: false,
      phase,
      severity: CheckPhase.failed,
      observed,
      threshold,
      message,
      detail: message,
    },
  ]);
}

/** Judges a dataset profile against its feature spec: schema, quality and the poisoning screen. */
export function judgeDataset(profile: DatasetProfile, spec: FeatureSpec): ValidationReport {
  const checks: MeasuredCheck[] = [];
  schemaAndQualityChecks(profile, spec, checks);
  poisoningChecks(profile, spec, checks);
  return reportOf(checks.map(toValidationCheck));
}

/** The failed checks' messages, one per line: the short form for logs, audit events and rejections. */
export function failedCheckMessages(report: ValidationReport): string[] {
  return report.checks.filter((c) => !c.passed).map((c) => `${c.check}: ${c.message}`);
}
