import { describe, expect, it } from 'vitest';
import { createJobRunner } from '../../src/jobs';

const base = { jobsDir: '/tmp/mlops-jobs-factory', localImages: {} };

describe('job runner factory', () => {
  it('builds the local runner by default', () => {
    expect(createJobRunner({ ...base, jobRunner: 'local' }).kind).toBe('local');
  });
  it('builds the Kubernetes runner from the MLOPS_K8S_* environment', () => {
    const r = createJobRunner({ ...base, jobRunner: 'kubernetes' }, { MLOPS_K8S_NAMESPACE: 'training' });
    expect(r.kind).toBe('kubernetes');
  });
  it('names the missing variable when the Kubernetes runner is not configured', () => {
    expect(() => createJobRunner({ ...base, jobRunner: 'kubernetes' }, {})).toThrow(
      /MLOPS_K8S_NAMESPACE is required/,
    );
  });
});
