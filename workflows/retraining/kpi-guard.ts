/**
 * The kpiGuard stage: after promotion the new champion's KPIs are watched for a window, judged
 * every interval by a pure function (absolute limits; stable is gone). Between two KPI snapshots the
 * workflow sleeps on a durable timer, so a worker that dies mid-window resumes it. A failed window,
 * or a `kpiBreach` signal pushed during the guard, restores the previous champion in traffic and in
 * the registry, tags the version, audits and updates the card; the pipeline then ends `rolled-back`.
 * The rollback runs in a non-cancellable scope. Measurement errors never roll back a champion.
 */
import { CancellationScope, condition, isCancellation, setHandler } from '@temporalio/workflow';
import { parseDuration } from '../../src/core/contracts/approval';
import { AuditEventType } from '../../src/core/contracts/audit';
import {
  KpiBreachSchema,
  kpiBreachSignal,
  type KpiGuardPolicy,
  type KpiGuardWindow,
} from '../../src/core/contracts/canary';
import { CheckPhase } from '../../src/core/contracts/checks';
import { formatZodError } from '../../src/core/contracts/errors';
import type { KpiBreach } from '../../src/core/contracts/gateway';
import { windowKpis, type KpiSnapshot } from '../../src/core/contracts/kpi';
import type { ModelCard } from '../../src/core/contracts/model-card';
import { judgeGuard } from '../../src/core/policy/canary-analysis';
import { failureOf } from '../shared/failures';
import { workflowNow } from '../shared/journal';
import { kpi, registry, traffic } from './activities';
import type { RetrainingJournal, RetrainingRun } from './context';

/** Marks the change that added kpiGuard, so histories from before it replay unchanged. */
export const KPI_GUARD_PATCH = 'retraining-kpi-guard';

/** Receives `kpiBreach` signals on the pipeline; only a breach of the watched version counts. */
export class BreachInbox {
  private watched?: string;
  breach?: KpiBreach;

  constructor(private readonly journal: RetrainingJournal) {}

  /** Installs the handler (at the start of the run; a breach outside the guard is recorded and ignored). */
  install(): void {
    setHandler(kpiBreachSignal, (payload) => {
      const r = KpiBreachSchema.safeParse(payload);
      if (!r.success) {
        this.journal.decide(
          'breach-ignored',
          `malformed kpiBreach: ${formatZodError(r.error).replace(/\n/g, '; ')}`,
        );
        return;
      }
      const b = r.data;
      if (this.watched === undefined || (b.version !== undefined && b.version !== this.watched)) {
        this.journal.decide(
          'breach-ignored',
          `kpiBreach for v${b.version ?? '?'} while ${this.watched ? `guarding v${this.watched}` : 'no guard runs'}`,
        );
        return;
      }
      this.breach ??= b;
    });
  }

  watch(version: string | undefined): void {
    this.watched = version;
  }
}

export type KpiGuardOutcome = { outcome: 'passed' | 'rolled-back'; reason: string };

export async function kpiGuardStage(
  run: RetrainingRun,
  args: {
    version: string;
    /** The version serving before the promotion: what a breach restores. */
    restoreTo?: string;
    policy: KpiGuardPolicy;
    inbox: BreachInbox;
    writeCard: (extra: Partial<ModelCard>) => Promise<unknown>;
    card: Partial<ModelCard>;
  },
): Promise<KpiGuardOutcome> {
  const { journal, model } = run;
  const { version, policy, inbox } = args;
  journal.enter('kpi-guard');
  const guard: NonNullable<typeof journal.status.kpiGuard> = {
    version,
    restoreTo: args.restoreTo,
    windows: [],
  };
  journal.status.kpiGuard = guard;
  inbox.watch(version);
  const windowMs = parseDuration(policy.window);
  const intervalMs = parseDuration(policy.interval);
  await journal.audit(
    AuditEventType.kpiGuardStarted,
    { window: policy.window, interval: policy.interval, restoreTo: args.restoreTo ?? null },
    { modelVersion: version },
  );

  const rollBack = (reason: string) =>
    CancellationScope.nonCancellable(async (): Promise<KpiGuardOutcome> => {
      const state = args.restoreTo
        ? await traffic.promoteTraffic({ model, version: args.restoreTo })
        : await traffic.getRoute({ model });
      const restored = await registry.restoreChampion({ model, version, reason });
      const champion = restored.champion;
      if (champion !== undefined) journal.status.champion = { version: champion };
      guard.outcome = 'rolled-back';
      guard.reason = reason;
      journal.decide(
        'rolled-back',
        `${reason}; traffic -> v${state?.stable ?? '?'}, champion -> ${
          champion === version ? `v${version} (no previous-champion to restore)` : `v${champion ?? '?'}`
        }`,
      );
      await journal.audit(
        AuditEventType.modelRolledBack,
        {
          reason,
          after: 'promotion',
          stable: state?.stable ?? null,
          champion: champion ?? null,
          moved: restored.moved,
        },
        { modelVersion: version },
      );
      await args.writeCard({ ...args.card, outcome: `rolled-back after promotion: ${reason}` });
      journal.enter('rolled-back');
      return { outcome: 'rolled-back', reason };
    });

  /** A snapshot, or why it could not be taken (a window that cannot be measured decides nothing). */
  const snapshot = async (): Promise<KpiSnapshot | string> => {
    try {
      return await kpi.snapshotKpis({ model });
    } catch (err) {
      if (isCancellation(err)) throw err;
      return failureOf(err).message;
    }
  };
  const breached = () => inbox.breach !== undefined;
  const pushed = (b: KpiBreach) =>
    `KPI breach pushed by the gateway during kpiGuard: ${b.metric} ${b.value} > ${b.threshold} over ${b.window}`;

  let before = await snapshot();
  let elapsed = 0;
  while (elapsed < windowMs) {
    const wait = Math.min(intervalMs, windowMs - elapsed);
    if (await condition(breached, wait)) break;
    elapsed += wait;
    const after = await snapshot();
    let entry: KpiGuardWindow;
    let failedDetails: string[] = [];
    if (typeof after === 'string' || typeof before === 'string') {
      entry = {
        at: workflowNow(),
        phase: CheckPhase.error,
        requests: 0,
        notes: [typeof after === 'string' ? after : (before as string)],
      };
    } else {
      try {
        const kpis = windowKpis(before, after, version);
        const judged = judgeGuard(kpis, policy);
        const notPassed = judged.checks.filter((c) => !c.passed);
        failedDetails = notPassed.filter((c) => c.phase === CheckPhase.failed).map((c) => c.detail);
        entry = {
          at: workflowNow(),
          phase: judged.phase,
          requests: kpis.requests,
          notes: notPassed.map((c) => c.name),
        };
      } catch (err) {
        entry = { at: workflowNow(), phase: CheckPhase.error, requests: 0, notes: [(err as Error).message] };
      }
    }
    guard.windows.push(entry);
    // A failed read keeps the old start, so the next window covers the gap.
    if (typeof after !== 'string' || typeof before === 'string') before = after;
    if (entry.phase !== CheckPhase.successful)
      journal.decide(`kpi-guard-${entry.phase}`, entry.notes.join('; '));
    if (entry.phase === CheckPhase.failed) {
      return rollBack(`kpiGuard window ${guard.windows.length} failed: ${failedDetails.join('; ')}`);
    }
  }
  if (inbox.breach) {
    guard.breach = inbox.breach;
    return rollBack(pushed(inbox.breach));
  }
  inbox.watch(undefined);
  const judged = guard.windows.filter((w) => w.phase === CheckPhase.successful).length;
  const reason = `v${version} held its KPIs for ${policy.window} (${judged} of ${guard.windows.length} window(s) judged successful)`;
  guard.outcome = 'passed';
  guard.reason = reason;
  journal.decide('kpi-guard-passed', reason);
  await journal.audit(
    AuditEventType.kpiGuardPassed,
    { windows: guard.windows.length, successful: judged },
    { modelVersion: version },
  );
  return { outcome: 'passed', reason };
}
