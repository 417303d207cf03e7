/**
 * Audit log: hash-chained, append-only record of every decision of the control plane. Node-only.
 */
export type { AuditSink } from './sink';
export {
  JsonlAuditSink,
  AuditEventConflictError,
  AuditEventInvalidError,
  AuditLogCorruptError,
  type JsonlAuditSinkOptions,
} from './jsonl-sink';
export { verifyAuditLog, formatAuditVerifyResult, type VerifyAuditLogOptions } from './verify';
export { auditEntryHash, buildAuditEntry, serialiseAuditEntry, AuditChainChecker } from './chain';
export {
  AUDIT_LOCK_STALE_MS,
  AUDIT_LOCK_ACQUIRE_TIMEOUT_MS,
  AUDIT_LOCK_RETRY_MIN_MS,
  AUDIT_LOCK_RETRY_MAX_MS,
  AuditLockTimeoutError,
} from './lock';
export { MemoryAuditSink } from './memory-sink';
