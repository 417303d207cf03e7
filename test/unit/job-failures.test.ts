import { describe, expect, it } from 'vitest';
import { JOB_REASONS, JobReason, type JobReason as Reason } from '../../src/core/contracts/jobs';
import { decideJobFailure, MAX_JOB_RESUBMITS } from '../../src/core/policy/job-failures';

describe('job failure table', () => {
  const failed = (reason?: Reason, exitCode?: number) => ({ phase: 'failed' as const, reason, exitCode });

  it.each([
    [JobReason.lost, 'resubmit'],
    [JobReason.evicted, 'resubmit'],
    [JobReason.preempted, 'resubmit'],
    [JobReason.exitCode, 'fail'],
    [JobReason.deadlineExceeded, 'fail'],
    [JobReason.oomKilled, 'fail'],
    [JobReason.imagePull, 'fail'],
    [JobReason.invalidSpec, 'fail'],
    [JobReason.deleted, 'fail'],
    [JobReason.unschedulable, 'fail'],
    [JobReason.queued, 'fail'],
  ] as const)('a failed job with reason %s -> %s', (reason, action) => {
    expect(decideJobFailure(failed(reason, reason === JobReason.exitCode ? 2 : undefined)).action).toBe(
      action,
    );
  });

  it('covers every reason', () => {
    for (const r of JOB_REASONS) expect(['resubmit', 'fail']).toContain(decideJobFailure(failed(r)).action);
  });

  it('does not retrain a job killed at its deadline, even though it has no exit code', () => {
    const a = decideJobFailure({
      phase: 'failed',
      reason: JobReason.deadlineExceeded,
      message: 'killed at 7200s',
    });
    expect(a).toMatchObject({ action: 'fail', why: 'job deadline-exceeded: killed at 7200s' });
    expect(a.action === 'fail' && a.hint).toMatch(/training.timeout/);
  });

  it('gives a resource hint for OOM', () => {
    const a = decideJobFailure(failed(JobReason.oomKilled));
    expect(a.action === 'fail' && a.hint).toMatch(/memory/);
  });

  it('reads a status without a reason as before: exit code -> fail, none -> lost', () => {
    expect(decideJobFailure(failed(undefined, 1)).action).toBe('fail');
    expect(decideJobFailure(failed(undefined, undefined)).action).toBe('resubmit');
  });

  it(`stops resubmitting after ${MAX_JOB_RESUBMITS} times`, () => {
    expect(decideJobFailure(failed(JobReason.evicted), MAX_JOB_RESUBMITS - 1).action).toBe('resubmit');
    expect(decideJobFailure(failed(JobReason.evicted), MAX_JOB_RESUBMITS)).toMatchObject({
      action: 'fail',
      why: `job evicted ${MAX_JOB_RESUBMITS + 1} times`,
    });
  });

  it('waits while pending or running and is done on success', () => {
    expect(decideJobFailure({ phase: 'pending', reason: JobReason.queued }).action).toBe('wait');
    expect(decideJobFailure({ phase: 'running' }).action).toBe('wait');
    expect(decideJobFailure({ phase: 'succeeded', exitCode: 0 }).action).toBe('done');
  });
});
