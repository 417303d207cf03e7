/**
 * The run journal: what a workflow of any family records about itself. It holds the run's status
 * (answered by the `status` query), moves it from stage to stage, records decisions with their
 * reasons, appends audit events with deterministic ids (`<workflowId>/<runId>/<seq>`, so a retried
 * append writes nothing new), and finishes only once every message handler has finished.
 *
 * Workflow code: deterministic, no I/O of its own (the audit append is an activity).
 */
import { allHandlersFinished, condition, workflowInfo } from '@temporalio/workflow';
import { auditEventId, type AuditEventInput } from '../../src/core/contracts/audit';

/** The part of a family's status that the journal maintains. */
export interface JournalStatus<Stage extends string> {
  stage: Stage;
  decisions: Array<{ stage: Stage; decision: string; reason: string; at: string }>;
}

/** Appends one audit event (the audit group's `recordAudit`, proxied). */
export type AuditAppend = (event: AuditEventInput) => Promise<unknown>;

/** Workflow time: deterministic in the sandbox. */
export const workflowNow = (): string => new Date().toISOString();

export class RunJournal<Stage extends string, Status extends JournalStatus<Stage>> {
  private seq = 0;
  private readonly runKey: string;
  readonly workflowId: string;

  constructor(
    readonly status: Status,
    private readonly model: string,
    private readonly append: AuditAppend,
  ) {
    const { workflowId, runId } = workflowInfo();
    this.workflowId = workflowId;
    this.runKey = `${workflowId}/${runId}`;
  }

  /** Moves the run to `stage`. */
  enter(stage: Stage): void {
    this.status.stage = stage;
  }

  /** Records a decision of the current stage with its reason. */
  decide(decision: string, reason: string): void {
    this.status.decisions.push({ stage: this.status.stage, decision, reason, at: workflowNow() });
  }

  /** Appends an audit event of this run; ids follow the order of calls, so replay rebuilds them. */
  async audit(
    type: string,
    details: Record<string, unknown>,
    extra: { modelVersion?: string; actor?: string } = {},
  ): Promise<void> {
    await this.append({
      eventId: auditEventId(this.runKey, ++this.seq),
      type,
      workflowId: this.workflowId,
      model: this.model,
      at: workflowNow(),
      details,
      ...extra,
    });
  }

  /** Waits for every signal and update handler to finish, then returns `result`. */
  async finish<R>(result: R): Promise<R> {
    await condition(allHandlersFinished);
    return result;
  }
}
