/**
 * Verify at every hop, on a real Temporal dev server, real MLflow and the real reference trainer:
 * retrainingPipeline signs the candidate at registration and verifies it again before evaluation,
 * before approval and after approval (before staging, canary or promotion). An attacker with write
 * access to the registry tampers at a chosen hop, and keeps the digest manifest consistent (new
 * manifest, new pinned tag), so only the signature can tell. Each case ends the run with its named
 * non-retryable failure, audited, with the version tagged and every alias where it was.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities';
import type { IntegrityHop } from '../../activities/security';
import type { WorkerConfig } from '../../src/config';
import type { AuditEntry } from '../../src/core/contracts/audit';
import { FailureType } from '../../src/core/contracts/failures';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import type { ModelPolicyInput } from '../../src/core/contracts/model-policy';
import { Aliases, MODEL_ARTIFACT_PATH, VersionTags } from '../../src/core/contracts/registry';
import {
  approveSignal,
  retrainWorkflowId,
  submitApprovalUpdate,
  statusQuery,
  type PipelineResult,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import type { ModelRegistry } from '../../src/ports/model-registry';
import { createModelRegistry } from '../../src/registry';
import { downloadTree, fetchVerifiedModel } from '../../src/registry/verified-model';
import { createFileSecretStore } from '../../src/secrets/local';
import { buildManifest, manifestArtifactPath } from '../../src/security/digests';
import { createKeySigner, generateSigningKeyPair, signModelFiles } from '../../src/security/model-signing';
import {
  MODEL_SIGNATURE_ARTIFACT,
  SecurityTags,
  createModelTrust,
  ensureSigningKey,
  signatureSubject,
  type ModelTrust,
} from '../../src/security/model-trust';
import { ensureReferenceEnv } from '../../src/stack/provision';
import { generateApproverKeyPair } from '../../src/security/approval-signing';
import { signStart } from '../../src/security/start-signing';
import { createPrivateKey } from 'node:crypto';
import {
  awaitApproval,
  createLocalEnv,
  type RunningWorker,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  writeDataset,
} from '../helpers/env';

const exec = promisify(execFile);

type Tamper = (args: { registry: ModelRegistry; model: string; version: string }) => Promise<void>;

let env: TestWorkflowEnvironment;
let worker: RunningWorker | undefined;
let config: WorkerConfig;
let registry: ModelRegistry;
let trust: ModelTrust;
let publicKeyPem: string;
let policyDir: string;
let train: string;
let holdout: string;
/** Tamper to run (once) right before the hop check of a model. */
const tampers = new Map<string, { hop: IntegrityHop; tamper: Tamper }>();

function writePolicy(model: string, approval?: ModelPolicyInput['approval']): void {
  const policy: ModelPolicyInput = {
    gate: {
      minHoldoutSize: 200,
      minPositives: 20,
      absoluteMinimums: { pr_auc: 0.15, roc_auc: 0.75 },
      guardrails: { maxFairnessGap: 0.3 },
    },
    approval: approval ?? { approvers: [{ id: 'bob', roles: ['risk-officer'] }] },
  };
  writeFileSync(path.join(policyDir, `${model}.json`), JSON.stringify(policy));
}

/** Rewrites one artifact and keeps the digest manifest and its pinned tag consistent with it. */
async function rewriteConsistently(
  registry: ModelRegistry,
  model: string,
  version: string,
  change: (files: Array<{ path: string; content: Buffer }>) => Array<{ path: string; content: Buffer }>,
): Promise<void> {
  const mv = await registry.getVersion(model, version);
  const runId = mv.runId!;
  const files = change(await downloadTree(registry, runId, MODEL_ARTIFACT_PATH));
  for (const f of files) await registry.uploadArtifact(runId, f.path, f.content);
  const { json, sha256 } = buildManifest(MODEL_ARTIFACT_PATH, files);
  await registry.uploadArtifact(runId, manifestArtifactPath(MODEL_ARTIFACT_PATH), json);
  await registry.setVersionTag(model, version, VersionTags.manifestSha256, sha256);
}

const changeByte: Tamper = ({ registry, model, version }) =>
  rewriteConsistently(registry, model, version, (files) =>
    files.map((f) => {
      if (!f.path.endsWith('input_schema.json')) return f;
      const text = f.content.toString('utf8');
      return { ...f, content: Buffer.from(text.replace('"', ' "')) };
    }),
  );
const addFile: Tamper = ({ registry, model, version }) =>
  rewriteConsistently(registry, model, version, (files) => [
    ...files,
    { path: `${MODEL_ARTIFACT_PATH}/extra_config.json`, content: Buffer.from('{"threshold":0.01}') },
  ]);
const unknownKey: Tamper = async ({ registry, model, version }) => {
  const mv = await registry.getVersion(model, version);
  const files = (await downloadTree(registry, mv.runId!, MODEL_ARTIFACT_PATH)).map((f) => ({
    path: f.path.slice(MODEL_ARTIFACT_PATH.length + 1),
    content: f.content,
  }));
  const stranger = createKeySigner(async () => generateSigningKeyPair().privateKeyPem);
  const { bundle } = await signModelFiles(files, stranger, { name: signatureSubject(model, version) });
  await registry.uploadArtifact(mv.runId!, MODEL_SIGNATURE_ARTIFACT, JSON.stringify(bundle));
};
const unsign: Tamper = ({ registry, model, version }) =>
  registry.setVersionTag(model, version, SecurityTags.signature, '');

beforeAll(async () => {
  env = await createLocalEnv();
  const stateDir = tempDir('hops');
  policyDir = tempDir('hops-policies');
  config = testWorkerConfig(stateDir, {}, { policyDir });
  registry = createModelRegistry({ kind: 'mlflow', trackingUri: config.trackingUri });
  const store = createFileSecretStore(path.join(stateDir, 'secrets'));
  publicKeyPem = await ensureSigningKey(store);
  trust = createModelTrust({ store });
  const data = tempDir('hops-data');
  [train, holdout] = await Promise.all([
    writeDataset(data, 'train.csv', { rows: 4000, seed: 31 }),
    writeDataset(data, 'holdout.csv', { rows: 2500, seed: 99 }),
  ]);
  worker = await runWorker({
    connection: env.nativeConnection,
    config,
    ports: { trust },
    wrapActivities: (acts) => {
      const verify = acts.verifyModelVersion;
      return {
        ...acts,
        verifyModelVersion: async (input: Parameters<typeof verify>[0]) => {
          const t = tampers.get(input.model);
          if (t && t.hop === input.hop) {
            tampers.delete(input.model);
            await t.tamper({ registry, model: input.model, version: input.version });
          }
          return verify(input);
        },
      } as Activities;
    },
  });
}, 300_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

function input(model: string, holdoutUri?: string): RetrainingInput {
  return {
    model,
    dataset: { uri: train },
    ...(holdoutUri ? { holdout: { uri: holdoutUri } } : {}),
    trigger: { kind: 'manual', by: 'dana' },
    initiator: 'dana',
    featureSpec: FRAUD_FEATURE_SPEC,
  };
}

async function auditOf(workflowId: string): Promise<AuditEntry[]> {
  return readFileSync(config.auditLogPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry)
    .filter((e) => e.workflowId === workflowId);
}

/** Runs the pipeline with `tamper` at `hop`, approving when asked; returns the failure type. */
async function runTampered(model: string, hop: IntegrityHop, tamper: Tamper): Promise<ApplicationFailure> {
  writePolicy(model);
  tampers.set(model, { hop, tamper });
  const handle = await env.client.workflow.start('retrainingPipeline', {
    taskQueue: config.taskQueue,
    workflowId: retrainWorkflowId(model),
    args: [input(model, holdout)],
  });
  if (hop === 'deploy') {
    await awaitApproval(model, () => handle.query(statusQuery));
    await handle.signal(approveSignal, { approver: 'bob' });
  }
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause instanceof Error && !(cause instanceof ApplicationFailure)) cause = cause.cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

async function expectRefusedAndUntouched(model: string, hop: IntegrityHop, failure: ApplicationFailure) {
  const mv = await registry.findVersionByAlias(model, Aliases.challenger);
  expect(mv?.tags[VersionTags.outcome]).toBe('integrity-refused');
  expect(mv?.tags[VersionTags.outcomeReason]).toContain(`${hop}:`);
  expect(await registry.findVersionByAlias(model, Aliases.champion)).toBeUndefined();
  const refused = (await auditOf(retrainWorkflowId(model))).find(
    (e) => e.type === 'integrity.checked' && (e.details as { ok?: boolean }).ok === false,
  );
  expect(refused?.details).toMatchObject({ hop, ok: false, failureType: failure.type });
}

describe('verify at every hop', () => {
  it('signs at registration; model_signing verifies the registered folder with the worker key', async () => {
    const model = uniqueModel('signed');
    const result = (await env.client.workflow.execute('retrainingPipeline', {
      taskQueue: config.taskQueue,
      workflowId: retrainWorkflowId(model),
      args: [input(model)],
    })) as PipelineResult;
    expect(result.outcome).toBe('registered');
    const mv = await registry.findVersionByAlias(model, Aliases.challenger);
    expect(mv?.tags[SecurityTags.signature]).toBe(MODEL_SIGNATURE_ARTIFACT);
    expect(mv?.tags[SecurityTags.formatScan]).toBe('passed');
    const audit = await auditOf(retrainWorkflowId(model));
    expect(audit.find((e) => e.type === 'integrity.checked')?.details).toMatchObject({
      hop: 'registration',
      ok: true,
    });
    // The registered folder and its bundle, checked by OpenSSF's own verifier.
    const dir = tempDir('hops-download');
    for (const f of await downloadTree(registry, mv!.runId!, MODEL_ARTIFACT_PATH)) {
      mkdirSync(path.dirname(path.join(dir, f.path)), { recursive: true });
      writeFileSync(path.join(dir, f.path), f.content);
    }
    writeFileSync(
      path.join(dir, 'model.sig'),
      await registry.downloadArtifact(mv!.runId!, MODEL_SIGNATURE_ARTIFACT),
    );
    writeFileSync(path.join(dir, 'pub.pem'), publicKeyPem);
    const cli = path.join(path.dirname(ensureReferenceEnv('signing')), 'model_signing');
    const out = await exec(cli, [
      'verify',
      'key',
      path.join(dir, MODEL_ARTIFACT_PATH),
      '--signature',
      path.join(dir, 'model.sig'),
      '--public_key',
      path.join(dir, 'pub.pem'),
    ]);
    expect(out.stdout + out.stderr).toContain('Verification succeeded');
    // A loader (fetchVerifiedModel, as the gateway and evaluation use it) refuses the same version
    // once another version's signature is put in its place.
    const other = uniqueModel('other');
    await env.client.workflow.execute('retrainingPipeline', {
      taskQueue: config.taskQueue,
      workflowId: retrainWorkflowId(other),
      args: [input(other)],
    });
    const ov = await registry.findVersionByAlias(other, Aliases.challenger);
    await registry.uploadArtifact(
      ov!.runId!,
      MODEL_SIGNATURE_ARTIFACT,
      await registry.downloadArtifact(mv!.runId!, MODEL_SIGNATURE_ARTIFACT),
    );
    const err = await fetchVerifiedModel(registry, ov!, { trust }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as ApplicationFailure).type).toBe(FailureType.ModelSignatureWrongSubject);
  });

  it('refuses each tamper at its hop with its named failure, audited, aliases untouched', async () => {
    const cases: Array<[string, IntegrityHop, Tamper, FailureType]> = [
      ['byte', 'evaluation', changeByte, FailureType.ModelSignatureMismatch],
      ['added', 'approval', addFile, FailureType.ModelSignatureMismatch],
      ['unsigned', 'evaluation', unsign, FailureType.ModelSignatureMissing],
      ['stranger', 'deploy', unknownKey, FailureType.ModelSignatureUntrusted],
    ];
    const results = await Promise.all(
      cases.map(async ([label, hop, tamper, type]) => {
        const model = uniqueModel(`tamper-${label}`);
        const failure = await runTampered(model, hop, tamper);
        return { model, hop, type, failure };
      }),
    );
    for (const r of results) {
      expect(`${r.hop}: ${r.failure.type}`).toBe(`${r.hop}: ${r.type}`);
      expect(r.failure.nonRetryable).toBe(true);
      await expectRefusedAndUntouched(r.model, r.hop, r.failure);
    }
  });
});

describe('proven initiator and four-eyes on keys', () => {
  it('refuses unsigned and forged starts; the key that signed the start may not approve under another name', async () => {
    const dana = generateApproverKeyPair();
    const bob = generateApproverKeyPair();
    const stranger = generateApproverKeyPair();
    const model = uniqueModel('ident');
    writePolicy(model, {
      approvers: [
        { id: 'alice', roles: ['ml-lead'], publicKey: dana.publicKeyPem },
        { id: 'bob', roles: ['risk-officer'], publicKey: bob.publicKeyPem },
      ],
      initiators: [{ id: 'dana', publicKey: dana.publicKeyPem }],
      requireSignedStart: true,
    });
    const workflowId = retrainWorkflowId(model);
    const start = (extra: Partial<RetrainingInput>) =>
      env.client.workflow.start('retrainingPipeline', {
        taskQueue: config.taskQueue,
        workflowId,
        args: [{ ...input(model, holdout), ...extra }],
      });
    const failureOf = async (h: Awaited<ReturnType<typeof start>>) => {
      const err = await h.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      let cause: unknown = (err as WorkflowFailedError).cause;
      while (cause instanceof Error && !(cause instanceof ApplicationFailure)) cause = cause.cause;
      return cause as ApplicationFailure;
    };
    expect((await failureOf(await start({}))).type).toBe(FailureType.InitiatorUnproven);
    const forged = signStart(
      { workflowId, model, dataset: train, initiator: 'dana' },
      createPrivateKey(stranger.privateKeyPem),
    );
    expect((await failureOf(await start({ startSignature: forged }))).type).toBe(
      FailureType.InitiatorUnproven,
    );
    const good = signStart(
      { workflowId, model, dataset: train, initiator: 'dana' },
      createPrivateKey(dana.privateKeyPem),
    );
    const handle = await start({ startSignature: good });
    const status = await awaitApproval(model, () => handle.query(statusQuery));
    expect(status.approval?.initiatorProof).toBe('signed');
    const self = await handle
      .executeUpdate(submitApprovalUpdate, { args: [{ decision: 'approve', approver: 'alice' }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(String((self as Error).cause ?? self)).toMatch(/self-approval/);
    await handle.signal(approveSignal, { approver: 'bob' });
    expect((await handle.result()).outcome).toBe('promoted');
    const checks = (await auditOf(workflowId)).filter((e) => e.type === 'initiator.checked');
    expect(checks.map((e) => (e.details as { ok: boolean }).ok)).toEqual([false, false, true]);
  });
});
