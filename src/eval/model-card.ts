/**
 * Renders a model card as Markdown: a human-readable page in the MLflow UI beside the JSON twin.
 */
import type { ModelCard } from '../core/contracts/model-card';
import type { Measured } from '../core/contracts/gate';

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
    }
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
