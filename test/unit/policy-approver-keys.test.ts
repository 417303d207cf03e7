/**
 * The policy loader registers approver keys by file: a policy's `publicKeyFile` is read from the
 * worker's approver-keys folder into `publicKey`; a missing or malformed key fails the policy naming
 * the approver and the file; a file name cannot leave the folder. The shipped fraud policy requires
 * signed approvals and names a key file for every approver.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPolicyActivities } from '../../activities/policy';
import { writeApproverKeyPair } from '../../src/cli/approver-keys';
import { DEFAULT_POLICY_DIR } from '../../src/config';
import { ModelPolicySchema } from '../../src/core/contracts/model-policy';
import { tempDir } from '../helpers/env';

const shipped = JSON.parse(readFileSync(path.join(DEFAULT_POLICY_DIR, 'fraud.json'), 'utf8')) as {
  approval: { requireSignature: boolean; approvers: Array<{ id: string; publicKeyFile?: string }> };
};

function policyFolder(): string {
  const dir = tempDir('policy-keys');
  writeFileSync(path.join(dir, 'fraud.json'), JSON.stringify(shipped));
  return dir;
}

describe('approver keys registered by file', () => {
  it('the shipped fraud policy requires signatures and names a key file per approver', () => {
    expect(shipped.approval.requireSignature).toBe(true);
    expect(shipped.approval.approvers.map((a) => a.publicKeyFile)).toEqual(
      shipped.approval.approvers.map((a) => `${a.id}.ed25519.pub`),
    );
    expect(ModelPolicySchema.safeParse(shipped).success).toBe(true);
  });

  it('reads every registered key into publicKey (default folder: <policy folder>/approver-keys)', async () => {
    const dir = policyFolder();
    const keys = Object.fromEntries(
      ['alice', 'bob', 'carol'].map((id) => [id, writeApproverKeyPair(path.join(dir, 'approver-keys'), id)]),
    );
    const policy = await createPolicyActivities({ policyDir: dir }).loadModelPolicy({ model: 'fraud' });
    for (const a of policy.approval.approvers) expect(a.publicKey).toBe(keys[a.id]?.publicKeyPem.trim());
  });

  it('fails the policy naming the approver and the file when a key is not registered', async () => {
    const dir = policyFolder();
    const keysDir = tempDir('policy-keys-elsewhere');
    writeApproverKeyPair(keysDir, 'alice');
    writeApproverKeyPair(keysDir, 'carol');
    const load = createPolicyActivities({ policyDir: dir, approverKeysDir: keysDir }).loadModelPolicy({
      model: 'fraud',
    });
    await expect(load).rejects.toMatchObject({ type: 'PolicyInvalid', nonRetryable: true });
    await expect(load).rejects.toThrow(
      `approval.approvers[1].publicKeyFile: bob's public key is not registered: ${path.join(keysDir, 'bob.ed25519.pub')} is unreadable (ENOENT)`,
    );
  });

  it('refuses a malformed key file, and the same key for two people', async () => {
    const dir = policyFolder();
    const keysDir = path.join(dir, 'approver-keys');
    const alice = writeApproverKeyPair(keysDir, 'alice');
    writeApproverKeyPair(keysDir, 'carol');
    mkdirSync(keysDir, { recursive: true });
    writeFileSync(path.join(keysDir, 'bob.ed25519.pub'), 'not a key');
    const acts = createPolicyActivities({ policyDir: dir });
    await expect(acts.loadModelPolicy({ model: 'fraud' })).rejects.toThrow(/bob\.ed25519\.pub .*PUBLIC KEY/);
    writeFileSync(path.join(keysDir, 'bob.ed25519.pub'), alice.publicKeyPem);
    await expect(acts.loadModelPolicy({ model: 'fraud' })).rejects.toThrow(
      /four-eyes needs one key per person/,
    );
  });

  it('a key file name cannot leave the approver-keys folder', () => {
    const bad = structuredClone(shipped);
    bad.approval.approvers[0]!.publicKeyFile = '../../etc/alice.pub';
    const r = ModelPolicySchema.safeParse(bad);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('no folders');
  });
});
