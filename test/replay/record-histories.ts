/**
 * Records workflow histories for the replay tests: `npx tsx test/replay/record-histories.ts`.
 * Starts the local stack and a worker, runs representative pipelines to completion (registered
 * without a holdout, rejected-data, promoted after refused and accepted approvals, expired), and
 * writes each history to test/fixtures/histories/. Re-record deliberately, when a workflow change
 * is meant to be incompatible (and versioned with `patched` for running workflows).
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { NativeConnection } from '@temporalio/worker';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadWorkerConfig } from '../../src/config';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import type { ModelPolicyInput } from '../../src/core/contracts/model-policy';
import {
  approveSignal,
  statusQuery,
  submitApprovalUpdate,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import { startStack } from '../../src/stack/launcher';
import { generateFraudDataset, writeCsv } from '../../src/workload/generator';
import { createWorker } from '../../workers/worker';

const OUT = path.join(__dirname, '..', 'fixtures', 'histories');

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-record-'));
  const stack = await startStack({ stateDir: path.join(dir, 'stack') });
  try {
    const policyDir = path.join(dir, 'policies');
    mkdirSync(policyDir, { recursive: true });
    const policy = (timeout: string): ModelPolicyInput => ({
      gate: { absoluteMinimums: { pr_auc: 0.15, roc_auc: 0.75 }, guardrails: { maxFairnessGap: 0.3 } },
      approval: {
        approvers: [
          { id: 'alice', roles: ['ml-lead'] },
          { id: 'bob', roles: ['risk-officer'] },
        ],
        timeout,
      },
    });
    writeFileSync(path.join(policyDir, 'replay-promoted.json'), JSON.stringify(policy('72h')));
    writeFileSync(path.join(policyDir, 'replay-expired.json'), JSON.stringify(policy('2s')));
    const train = path.join(dir, 'train.csv');
    const holdout = path.join(dir, 'holdout.csv');
    const corrupt = path.join(dir, 'corrupt.csv');
    await writeCsv(train, generateFraudDataset({ rows: 6000, seed: 71 }));
    await writeCsv(holdout, generateFraudDataset({ rows: 6000, seed: 72 }));
    writeFileSync(corrupt, 'not,a\n"broken');

    const config = loadWorkerConfig({
      MLFLOW_TRACKING_URI: stack.mlflow.trackingUri,
      MLOPS_STATE_DIR: path.join(dir, 'state'),
      MLOPS_POLICY_DIR: policyDir,
    });
    const worker = await createWorker({
      connection: await NativeConnection.connect({ address: stack.temporal.address }),
      config,
    });
    const client = new Client({ connection: await Connection.connect({ address: stack.temporal.address }) });
    const base = {
      trigger: { kind: 'manual', by: 'dana' },
      initiator: 'dana',
      featureSpec: FRAUD_FEATURE_SPEC,
    } as const;
    const scenarios: Array<{
      name: string;
      input: RetrainingInput;
      drive?: (h: WorkflowHandle) => Promise<void>;
    }> = [
      { name: 'registered', input: { ...base, model: 'replay-registered', dataset: { uri: train } } },
      { name: 'rejected-data', input: { ...base, model: 'replay-corrupt', dataset: { uri: corrupt } } },
      {
        name: 'promoted',
        input: { ...base, model: 'replay-promoted', dataset: { uri: train }, holdout: { uri: holdout } },
        drive: async (h) => {
          for (;;) {
            if ((await h.query(statusQuery)).stage === 'awaiting-approval') break;
            await new Promise((r) => setTimeout(r, 300));
          }
          await h.signal(approveSignal, { approver: 'mallory' });
          await h
            .executeUpdate(submitApprovalUpdate, { args: [{ decision: 'approve', approver: 'dana' }] })
            .catch(() => {});
          await h.signal(approveSignal, { approver: 'bob', comment: 'ok' });
        },
      },
      {
        name: 'expired',
        input: { ...base, model: 'replay-expired', dataset: { uri: train }, holdout: { uri: holdout } },
      },
    ];
    await worker.runUntil(async () => {
      for (const s of scenarios) {
        const h = await client.workflow.start('retrainingPipeline', {
          taskQueue: config.taskQueue,
          workflowId: `retrain-${s.input.model}`,
          args: [s.input],
        });
        await s.drive?.(h);
        const result = await h.result();
        // Exported the way users export histories: `temporal workflow show -o json`.
        const json = execFileSync(stack.temporal.cli, [
          'workflow',
          'show',
          '--address',
          stack.temporal.address,
          '--workflow-id',
          h.workflowId,
          '-o',
          'json',
        ]);
        writeFileSync(path.join(OUT, `${s.name}.json`), json);
        console.log(`recorded ${s.name}: ${(result as { outcome: string }).outcome}`);
      }
    });
  } finally {
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
