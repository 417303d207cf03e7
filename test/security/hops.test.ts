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
  type PipelineStatus,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import type { ModelRegistry } from '../../src/ports/model-registry';
import { createModelRegistry } from '../../src/registry';
import { downloadTree, fetchVerifiedModel } from '../../src/registry/verified-model';
import { createFileSecretStore } from '../../src/secrets/local';
import { buildManifest, manifestArtifactPath } from '../../src/security/digests';
import {
  createKeySigner,
  createKeyVerifier,
  generateSigningKeyPair,
  signModelFiles,
} from '../../src/security/model-signing';
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
import { exportEvidenceChain, verifyEvidenceChain } from '../../src/security/evidence';
import { createPrivateKey } from 'node:crypto';
import {
  AWAIT_APPROVAL_TIMEOUT_MS,
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
/** Every workflow this file starts, and every secret value it handles: none may leak into histories or logs. */
const startedWorkflows = new Set<string>();
const secretValues: string[] = [];
/** Tamper to run (once) right before the hop check of a model. */
const tampers = new Map<string, { hop: IntegrityHop; tamper: Tamper }>();

function writePolicy(model: string, approval?: ModelPolicyInput['approval']): void {
  const policy: ModelPolicyInput = {
    gate: {
      minHoldoutSize: 200,
      minPositives: 20,
      absoluteMinimums: { pr_auc: 0.15, roc_auc: 0.75 },
      // Per-group TPRs on this small holdout are noisy: judge groups from 5 positives (fairness is the gate tests' subject).
      guardrails: { maxFairnessGap: 0.3, fairnessMinGroupCount: 5 },
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
  secretValues.push((await store.get({ secret: 'model-signing', key: 'private.pem' }))!);
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
  startedWorkflows.add(retrainWorkflowId(model));
  return {
    model,
    dataset: { uri: train },
    ...(holdoutUri ? { holdout: { uri: holdoutUri } } : {}),
    trigger: { kind: 'manual', by: 'dana' },
    initiator: 'dana',
    featureSpec: FRAUD_FEATURE_SPEC,
  };
}

/** Waits for awaiting-approval; a query that times out on a loaded machine is asked again, not fatal. */
async function waitForApproval(handle: { query: (q: typeof statusQuery) => Promise<PipelineStatus> }) {
  const deadline = Date.now() + 2 * AWAIT_APPROVAL_TIMEOUT_MS;
  for (;;) {
    const s = await handle.query(statusQuery).catch((err: unknown) => {
      if (Date.now() > deadline) throw err;
      return undefined;
    });
    if (s?.stage === 'awaiting-approval') return s;
    if (s && ['completed', 'failed', 'rejected', 'expired'].includes(s.stage))
      throw new Error(`ended at ${s.stage} before approval: ${JSON.stringify(s.decisions)}`);
    if (Date.now() > deadline) throw new Error('no approval request in time');
    await new Promise((r) => setTimeout(r, 1000));
  }
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
    await waitForApproval(handle);
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
    secretValues.push(dana.privateKeyPem, bob.privateKeyPem, stranger.privateKeyPem);
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
    const status = await waitForApproval(handle);
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
    // The whole chain, offline: exported once, verified; a card edited afterwards breaks it.
    const mv = await registry.findVersionByAlias(model, Aliases.champion);
    expect(mv?.tags[SecurityTags.evidence]).toBe('signatures/evidence.sig');
    const chain = tempDir('hops-chain');
    await exportEvidenceChain(registry, mv!, chain, config.auditLogPath);
    const verifier = createKeyVerifier([publicKeyPem]);
    const chainChecks = await verifyEvidenceChain(chain, verifier);
    expect(chainChecks.filter((c) => !c.ok)).toEqual([]);
    expect(chainChecks.map((c) => c.check)).toEqual([
      'evidence signature',
      'model signature over the files',
      'model card',
      'gate, approvals, data',
      'audit log',
    ]);
    const cardFile = path.join(chain, 'model_card.json');
    writeFileSync(cardFile, readFileSync(cardFile, 'utf8').replace('"promote"', '"reject"'));
    const broken = await verifyEvidenceChain(chain, verifier);
    expect(broken.filter((c) => !c.ok).map((c) => c.check)).toEqual(['model card']);
    const checks = (await auditOf(workflowId)).filter((e) => e.type === 'initiator.checked');
    expect(checks.map((e) => (e.details as { ok: boolean }).ok)).toEqual([false, false, true]);
  });
});

describe('secrets by reference', () => {
  it('no secret value appears in any exported history, the audit log or the model cards', async () => {
    // The PEM body lines (64 base64 characters each) are what a leak would carry, whole or in part.
    const needles = secretValues.flatMap((pem) =>
      pem
        .split('\n')
        .filter((l) => l.length >= 40 && !l.startsWith('-----'))
        .map((l) => l.slice(0, 40)),
    );
    expect(needles.length).toBeGreaterThanOrEqual(secretValues.length);
    const haystacks: Array<[string, string]> = [['audit log', readFileSync(config.auditLogPath, 'utf8')]];
    for (const id of startedWorkflows) {
      const history = await env.client.workflow.getHandle(id).fetchHistory();
      haystacks.push([`history ${id}`, JSON.stringify(history)]);
      const model = id.replace(/^retrain-/, '');
      const mv = await registry.findVersionByAlias(model, Aliases.challenger).catch(() => undefined);
      if (mv?.runId) {
        for (const f of await downloadTree(registry, mv.runId, 'model_card').catch(() => []))
          haystacks.push([`card ${f.path}`, f.content.toString('utf8')]);
      }
    }
    expect(haystacks.length).toBeGreaterThan(startedWorkflows.size);
    const leaks = haystacks.flatMap(([where, text]) =>
      needles
        .filter((n) => text.includes(n) || text.includes(Buffer.from(n).toString('base64')))
        .map(() => where),
    );
    expect(leaks).toEqual([]);
  });
});
