/**
 * Renders a model card as Markdown: a human-readable page in the MLflow UI beside the JSON twin.
 */
import type { ModelCard } from '../core/contracts/model-card';
import type { Measured, ModelEvaluation } from '../core/contracts/gate';
import type { AttributionSummary } from '../core/contracts/attribution';
import type { FairnessReport } from '../core/contracts/fairness';
import { attributionDrift } from '../core/policy/attribution';

/** A measured value for people: fixed digits, or `n/a` when it is NaN, null or missing. */
export const fmt = (v: Measured | undefined, digits = 4): string =>
  typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : 'n/a';

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

export function renderModelCard(card: ModelCard): string {
  const out: string[] = [];
  out.push(`# Model card: ${card.model} v${card.version}`, '');
  out.push(
    `Generated ${card.generatedAt} by workflow \`${card.workflowId}\` (MLflow run \`${card.runId}\`).`,
    '',
  );
  out.push('## Intended use', '', card.intendedUse, '');
  out.push('## Data', '');
  out.push(row(['dataset', 'uri', 'sha256', 'rows']), row(['---', '---', '---', '---']));
  out.push(
    row([
      'training',
      card.data.training.uri,
      `\`${card.data.training.sha256}\``,
      String(card.data.training.rows ?? 'n/a'),
    ]),
  );
  if (card.data.holdout) {
    const h = card.data.holdout;
    out.push(row(['holdout (frozen)', h.uri, `\`${h.sha256}\``, `${h.rows} (${h.positives} positive)`]));
  }
  out.push('', `Feature spec: \`${card.featureSpec}\`. Trigger: ${card.trigger}.`, '');

  if (card.challenger) {
    const c = card.challenger;
    const champ = card.champion?.evaluation;
    out.push('## Metrics on the holdout', '');
    out.push(
      row([
        'metric',
        `v${card.version} (challenger)`,
        champ ? `v${card.champion?.version} (champion)` : 'champion',
      ]),
    );
    out.push(row(['---', '---', '---']));
    for (const [name, value] of Object.entries(c.metrics)) {
      out.push(
        row([
          name === card.primaryMetric ? `**${name}** (primary)` : name,
          fmt(value),
          champ ? fmt(champ.metrics[name as keyof typeof champ.metrics]) : '-',
        ]),
      );
    }
    if (!('brier' in c.metrics))
      out.push(row(['brier', fmt(c.calibration.brier), champ ? fmt(champ.calibration.brier) : '-']));
    if (!('ece' in c.metrics))
      out.push(row(['ece', fmt(c.calibration.ece), champ ? fmt(champ.calibration.ece) : '-']));
    out.push(row(['latency p95 (ms)', fmt(c.latency.p95, 3), champ ? fmt(champ.latency.p95, 3) : '-']));
    out.push('');
    const cmp = card.comparison;
    if (cmp?.method === 'bootstrap') {
      const level = Math.round((1 - cmp.alpha) * 100);
      out.push(
        `Challenger minus champion on ${cmp.metric}: ${fmt(cmp.estimate)} (${level}% paired bootstrap CI ${fmt(cmp.ciLow)} to ${fmt(cmp.ciHigh)}, p = ${fmt(cmp.pValue)}, ${cmp.validIterations}/${cmp.iterations} resamples, n = ${cmp.n}).`,
        '',
      );
    } else if (cmp?.method === 'mcnemar') {
      out.push(
        `McNemar test: champion-only correct ${cmp.b}, challenger-only correct ${cmp.c}, p = ${fmt(cmp.pValue)} (${cmp.exact ? 'exact' : 'chi-square'}).`,
        '',
      );
    } else {
      out.push('No champion: the challenger was judged against absolute minimums.', '');
    }
    if (c.fairness) {
      out.push(
        '## Fairness',
        '',
        `Threshold ${fmt(c.threshold ?? 0.5, 2)}. Demographic parity difference ${fmt(c.fairness.dpd)}, equal opportunity difference ${fmt(c.fairness.eod)}${champ?.fairness ? ` (champion: ${fmt(champ.fairness.dpd)}, ${fmt(champ.fairness.eod)})` : ''}.`,
        '',
      );
      out.push(
        row(['group', 'n', 'positives', 'positive-prediction rate', 'TPR']),
        row(['---', '---', '---', '---', '---']),
      );
      for (const [g, s] of Object.entries(c.fairness.perGroup)) {
        out.push(row([g, String(s.n), String(s.positives), fmt(s.positiveRate), fmt(s.tpr)]));
      }
      out.push('');
      if (c.fairness.report) out.push(...renderFairnessReport(c.fairness.report));
    }
    if (c.attribution) out.push(...renderAttributions(c.attribution, champ));
  }

  if (card.verdict) {
    out.push('## Promotion gate', '', `Decision: **${card.verdict.decision}**`, '');
    for (const r of card.verdict.reasons) out.push(`- ${r}`);
    out.push('');
  }
  if (card.approval) {
    const a = card.approval;
    out.push(
      '## Approval',
      '',
      `Outcome: **${a.outcome}** (${a.approvals.length} of ${a.requiredApprovals} approvals).`,
      '',
    );
    if (a.attempts.length) {
      out.push(
        row(['at', 'approver', 'decision', 'accepted', 'signed', 'reason']),
        row(['---', '---', '---', '---', '---', '---']),
      );
      for (const t of a.attempts) {
        out.push(
          row([
            t.at,
            t.approver,
            t.decision,
            t.accepted ? 'yes' : `no (${t.code ?? ''})`,
            t.signed ? 'yes' : 'no',
            t.reason.replace(/\|/g, '/'),
          ]),
        );
      }
      out.push('');
    }
  }
  if (card.outcome) out.push(`## Outcome`, '', card.outcome, '');
  out.push('## Limitations', '');
  for (const l of card.limitations) out.push(`- ${l}`);
  out.push('');
  return out.join('\n');
}

/** The fairness report: each gap with its interval, group counts and rule, and the per-group rates. */
function renderFairnessReport(r: FairnessReport): string[] {
  const level = `${Number(((1 - r.alpha) * 100).toPrecision(4))}%`;
  const out: string[] = ['### Fairness report', ''];
  out.push(
    `Gaps are max - min across groups with at least ${r.minGroupCount} of the counted cases; a group below that is too small to judge. Intervals: ${level} bootstrap (${r.iterations} resamples within groups, seed ${r.seed}); the change against the champion is paired over the same resamples.`,
    '',
  );
  out.push(
    row([
      'metric',
      'gap',
      `${level} CI`,
      'vs champion',
      `${level} CI of change`,
      'groups judged',
      'too small to judge',
    ]),
    row(['---', '---', '---', '---', '---', '---', '---']),
  );
  for (const m of r.metrics) {
    const v = m.vsChampion;
    out.push(
      row([
        `${m.metric} (${m.countOf})`,
        fmt(m.gap.estimate),
        `${fmt(m.gap.ciLow)} to ${fmt(m.gap.ciHigh)}`,
        v ? `${fmt(v.estimate)} (champion ${fmt(v.champion)})` : '-',
        v ? `${fmt(v.ciLow)} to ${fmt(v.ciHigh)}` : '-',
        m.judged.join(', ') || 'none',
        m.tooSmall.join(', ') || 'none',
      ]),
    );
  }
  out.push('');
  out.push(
    row([
      'group',
      'n',
      'positives',
      'predicted positive',
      'selection rate',
      'TPR',
      'FPR',
      'PPV',
      'mean score - rate',
      'Brier',
    ]),
    row(['---', '---', '---', '---', '---', '---', '---', '---', '---', '---']),
  );
  for (const [g, s] of Object.entries(r.groups)) {
    out.push(
      row([
        g,
        String(s.n),
        String(s.positives),
        String(s.predictedPositives),
        fmt(s.selectionRate),
        fmt(s.tpr),
        fmt(s.fpr),
        fmt(s.ppv),
        fmt(s.calibrationInTheLarge),
        fmt(s.brier),
      ]),
    );
  }
  out.push('');
  return out;
}

/** Global importance of the version (and the champion's, with the drift), and per segment. */
function renderAttributions(a: AttributionSummary, champion: ModelEvaluation | undefined): string[] {
  const ch = champion?.attribution;
  const what = a.output === 'margin' ? 'raw margin (log-odds)' : 'positive-class probability';
  const how =
    a.method === 'tree-shap'
      ? 'exact interventional TreeSHAP'
      : `KernelSHAP (${a.nsamples ?? '?'} coalitions per row)`;
  const out: string[] = ['## Attributions', ''];
  out.push(
    `Global importance: mean |attribution| of the ${what} over ${a.rows} holdout rows, ${how} against ${a.background} background rows of the training data; share of the total.`,
    '',
  );
  const drift = ch ? attributionDrift(ch, a) : undefined;
  out.push(
    row([
      'feature',
      'share',
      'mean abs',
      ch ? 'champion share' : '',
      ch ? 'change' : '',
      a.permutation ? `permutation (${a.permutation.scoring} drop ± sd)` : '',
    ]),
    row(['---', '---', '---', '---', '---', '---']),
  );
  const order = [...a.features].sort((x, y) => (a.global[y]?.share ?? 0) - (a.global[x]?.share ?? 0));
  for (const f of order) {
    const g = a.global[f];
    const c = ch?.global[f];
    out.push(
      row([
        f,
        fmt(g?.share, 3),
        fmt(g?.meanAbs),
        c ? fmt(c.share, 3) : '',
        c && g ? `${g.share - c.share >= 0 ? '+' : ''}${(g.share - c.share).toFixed(3)}` : '',
        a.permutation ? `${fmt(a.permutation.mean[f])} ± ${fmt(a.permutation.std[f])}` : '',
      ]),
    );
  }
  out.push('');
  if (drift) {
    out.push(
      `Attribution drift against the champion: Spearman rank correlation ${fmt(drift.rankCorrelation, 3)}; largest shifts ${drift.shifts.map((s) => `${s.feature} ${s.change >= 0 ? '+' : ''}${s.change.toFixed(3)}`).join(', ')}.`,
      '',
    );
  }
  const segments = Object.entries(a.bySegment);
  if (segments.length) {
    out.push('Share of importance per segment of the sensitive attribute:', '');
    out.push(
      row(['feature', ...segments.map(([s, v]) => `${s} (n=${v.n})`)]),
      row(['---', ...segments.map(() => '---')]),
    );
    for (const f of order) out.push(row([f, ...segments.map(([, v]) => fmt(v.global[f]?.share, 3))]));
    out.push('');
  }
  return out;
}
