/**
 * Audit events and hash-chained audit entries.
 *
 * Rules:
 * - Sandbox-safe (zod only): the workflow builds events, an activity appends them (src/audit).
 * - `eventId` is the idempotency key: derive it from the workflow id and a per-workflow sequence number
 *   (`${workflowId}/${seq}`, see {@link auditEventId}), never from randomness, so an activity retry appends nothing
 *   new.
 * - `at` is workflow time (ISO), so the same event built again on replay or retry is byte-identical.
 * - `details` is plain JSON; properties whose value is `undefined` are dropped (as JSON would), anything not
 *   representable in JSON (NaN, Infinity, functions, class instances such as Date) is refused.
 * - An entry's `hash` is sha256 (hex) of the RFC 8785 canonical JSON of the entry without `hash`; the first entry
 *   has `seq` 1 and `prevHash` {@link AUDIT_GENESIS_HASH}.
 */
import { z } from 'zod';
import { IsoDateTimeSchema, Sha256HexSchema } from './primitives';

/** `prevHash` of the first entry: 64 zeros (there is no previous entry). */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);
/** `seq` of the first entry; the entry on line L of a JSONL log has seq L. */
export const AUDIT_FIRST_SEQ = 1;
/** Longest event id (workflow ids are bounded too; this leaves room for the sequence suffix). */
export const AUDIT_EVENT_ID_MAX_LENGTH = 512;
/** Longest event type, model, actor or workflow id string kept in an entry. */
export const AUDIT_FIELD_MAX_LENGTH = 256;

/** Event types written by the control plane (the field is open: other dotted lowercase names are valid too). */
export const AuditEventType = {
  pipelineStarted: 'pipeline.started',
  datasetSnapshotted: 'dataset.snapshotted',
  datasetValidated: 'dataset.validated',
  modelTrained: 'model.trained',
  modelRegistered: 'model.registered',
  integrityChecked: 'integrity.checked',
  evaluationCompleted: 'evaluation.completed',
  gateVerdict: 'gate.verdict',
  approvalRequested: 'approval.requested',
  approvalAttempt: 'approval.attempt',
  approvalExpired: 'approval.expired',
  modelPromoted: 'model.promoted',
  pipelineRejected: 'pipeline.rejected',
  pipelineFailed: 'pipeline.failed',
  canaryStarted: 'canary.started',
  canaryStep: 'canary.step',
  canaryAnalysis: 'canary.analysis',
  canaryPaused: 'canary.paused',
  canaryResumed: 'canary.resumed',
  canaryBreach: 'canary.breach',
  canaryAborted: 'canary.aborted',
  canaryPromoted: 'canary.promoted',
  modelRolledBack: 'model.rolled-back',
  kpiGuardStarted: 'kpi-guard.started',
  kpiGuardPassed: 'kpi-guard.passed',
  driftDetected: 'drift.detected',
} as const;
export type KnownAuditEventType = (typeof AuditEventType)[keyof typeof AuditEventType];

/** Idempotency key of the `seq`-th audit event of a workflow. */
export const auditEventId = (workflowId: string, seq: number): string => `${workflowId}/${seq}`;

/** A plain object from any realm (the workflow sandbox has its own `Object.prototype`). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function dropUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropUndefined);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = dropUndefined(v);
    return out;
  }
  return value;
}

/** JSON object of event details. */
export const AuditDetailsSchema = z.preprocess(dropUndefined, z.record(z.string(), z.json()));

const BoundedText = z.string().min(1, 'must not be empty').max(AUDIT_FIELD_MAX_LENGTH);

export const AuditEventSchema = z.strictObject({
  eventId: z.string().min(1, 'must not be empty').max(AUDIT_EVENT_ID_MAX_LENGTH),
  type: z
    .string()
    .max(AUDIT_FIELD_MAX_LENGTH)
    .regex(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/, 'must be dotted lowercase words, e.g. gate.verdict'),
  workflowId: BoundedText,
  model: BoundedText,
  modelVersion: BoundedText.optional(),
  actor: BoundedText.optional(),
  at: IsoDateTimeSchema,
  details: AuditDetailsSchema.default({}),
});
export type AuditEvent = z.output<typeof AuditEventSchema>;
export type AuditEventInput = z.input<typeof AuditEventSchema>;

export const AuditEntrySchema = AuditEventSchema.extend({
  seq: z.number().int().min(AUDIT_FIRST_SEQ),
  prevHash: Sha256HexSchema,
  hash: Sha256HexSchema,
});
export type AuditEntry = z.output<typeof AuditEntrySchema>;

/** Where and why a log first fails verification. */
export interface AuditBreak {
  /** 1-based line number in the log file. */
  line: number;
  seq?: number;
  eventId?: string;
  reason: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  /** Entries that verified before the first break (all of them when ok). */
  entries: number;
  /** seq and hash of the last verified entry (absent for an empty log): record it elsewhere to detect truncation. */
  head?: { seq: number; hash: string };
  firstBroken?: AuditBreak;
}
