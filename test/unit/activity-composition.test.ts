import { describe, expect, it } from 'vitest';
import { composeActivities, controlPlaneGroups, DuplicateActivityError } from '../../activities';
import { MemoryAuditSink } from '../../src/audit';
import { LocalProcessRunner } from '../../src/jobs';
import { MemoryModelRegistry } from '../../src/registry';

const groups = controlPlaneGroups({
  registry: new MemoryModelRegistry(),
  jobs: new LocalProcessRunner({ root: '/nonexistent', images: {} }),
  audit: new MemoryAuditSink(),
  snapshotDir: '/nonexistent',
  policyDir: '/nonexistent',
});

describe('activity groups', () => {
  it('no two activities of the control plane share a name', () => {
    const names = groups.flatMap((g) => Object.keys(g));
    expect(new Set(names).size).toBe(names.length);
    expect(Object.keys(composeActivities(...groups)).sort()).toEqual([...names].sort());
  });

  it('composition refuses a name defined twice instead of silently replacing it', () => {
    const a = { run: async () => 1 };
    const b = { run: async () => 2 };
    expect(() => composeActivities(a, b)).toThrow(DuplicateActivityError);
    expect(() => composeActivities(a, b)).toThrow(/"run" is defined by two groups/);
  });
});
