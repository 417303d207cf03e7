/**
 * `npm run demo`: the main job on embedded defaults. Provisions and starts the local stack and a
 * worker, then plays a month of a fraud model's life through `retrainingPipeline`, started through
 * the Temporal client exactly as `temporal workflow start` would:
 *
 * 0. The fraud policy requires signed approvals: the demo creates its approvers' Ed25519 keys in
 *    its run folder (`approver-keys/`, private keys in owner-only files) and registers the public
 *    keys with its worker (MLOPS_APPROVER_KEYS_DIR, where the policy's `publicKeyFile`s are read).
 *    Private keys are read only by this process to sign; they never enter workflow input, history
 *    or logs (a signature does, bound to workflow id, version, decision and approver).
 * 1. Last month's data trains the first model; it is judged against the policy's absolute
 *    minimums and approved by `alice` (a signed `submitApproval` update) to become champion.
 * 2. This month eight times more labelled data has arrived (trigger `new-data`). The retrained
 *    challenger is compared with the champion on this month's frozen holdout (paired bootstrap interval), the
 *    gate decides, a model card is written, and the pipeline waits for a human: the demo prints
 *    the exact `npm run approve -- ... --key-file` command that signs and sends the approval, or
 *    has `bob` sign and send it itself with `--auto-approve`.
 *
 * It ends by printing the model, version, aliases, MLflow and Temporal UI links, the model card,
 * and the audit log's verification. State lives in .state/demo (wiped at start; `--keep` leaves
 * the stack running afterwards).
 */
import {
  Client,
  Connection,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createWorker } from '../../workers/worker';
import { writeApproverKeyPair } from './approver-keys';
import { buildApprovalRequest, shellQuote } from './approve';
import { DemoServing } from './demo-serving';
import { verifyAuditLog, formatAuditVerifyResult } from '../audit';
import { loadWorkerConfig } from '../config';
import { Aliases, VersionTags } from '../core/contracts/registry';
import { MlflowModelRegistry } from '../registry';
import { loadPrivateKey } from '../security/approval-signing';
import { fetchVerifiedModel } from '../registry/verified-model';
import { ApprovalMessageName } from '../core/contracts/approval';
import {
  retrainWorkflowId,
  statusQuery,
  submitApprovalUpdate,
  WORKFLOW_TYPES,
  type PipelineResult,
  type PipelineStatus,
  type RetrainingInput,
} from '../core/contracts/retraining';
import { fmt } from '../eval/model-card';
import { MlflowClient } from '../mlflow';
import { STATE_DIR } from '../stack/paths';
import { startStack, type Stack } from '../stack/launcher';
import { generateFraudDataset, writeCsv } from '../workload/generator';

/** October's labelled transactions: the first, small batch of labels the product launched with. */
export const DEMO_FIRST_ROWS = 2000;
/** November's labelled transactions: eight times more, arriving as new data. */
export const DEMO_SECOND_ROWS = 16000;
/** The frozen holdout: large enough for tight intervals and per-region fairness figures. */
export const DEMO_HOLDOUT_ROWS = 8000;
export const DEMO_SEED = 7;
const MODEL = 'fraud';
/** Who starts the demo pipelines; the fraud policy forbids the initiator from approving. */
const INITIATOR = 'demo';
/** The fraud policy's approvers (deploy/policies/fraud.json); the demo creates a key for each. */
const DEMO_APPROVERS = ['alice', 'bob', 'carol'] as const;
/** Folder of the demo's approver keys inside its run folder (private keys mode 0600, folder 0700). */
const APPROVER_KEYS_SUBDIR = 'approver-keys';

function describeEvaluation(status: PipelineStatus): void {
  const e = status.evaluation;
  if (!e) return;
  const m = e.primaryMetric as keyof typeof e.challenger.metrics;
  console.log(`   holdout ${e.holdoutRows} rows, sha256 ${e.holdoutSha256.slice(0, 16)}...`);
  console.log(
    `   challenger v${status.candidate?.version}: ${m} ${fmt(e.challenger.metrics[m])}, roc_auc ${fmt(e.challenger.metrics.roc_auc)}, ece ${fmt(e.challenger.calibration.ece)}, eod ${fmt(e.challenger.fairness?.eod)}`,
  );
  if (e.champion) {
    const c = e.champion.evaluation;
    console.log(
      `   champion   v${e.champion.version}: ${m} ${fmt(c.metrics[m])}, roc_auc ${fmt(c.metrics.roc_auc)}, ece ${fmt(c.calibration.ece)}, eod ${fmt(c.fairness?.eod)}`,
    );
  }
  const cmp = e.comparison;
  if (cmp?.method === 'bootstrap') {
    console.log(
      `   challenger - champion ${cmp.metric}: ${fmt(cmp.estimate)}  ${Math.round((1 - cmp.alpha) * 100)}% CI [${fmt(cmp.ciLow)}, ${fmt(cmp.ciHigh)}]  p=${fmt(cmp.pValue)}  (${cmp.iterations} paired bootstrap resamples)`,
    );
  } else if (!e.champion) {
    console.log('   no champion yet: judged against the policy minimums');
  }
  if (status.gate) {
    console.log(`   gate: ${status.gate.decision.toUpperCase()}`);
    for (const r of status.gate.reasons) console.log(`     - ${r}`);
  }
}

async function waitForStage(
  handle: WorkflowHandle,
  done: (s: PipelineStatus) => boolean,
): Promise<PipelineStatus> {
  for (;;) {
    const s = await handle.query(statusQuery);
    if (done(s)) return s;
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') return s;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * One demo per state folder: a second one would wipe the first one's data under it. The lock file
 * holds the owner's pid; a lock whose process is gone is taken over.
 */
/** The demo's canary: three steps, short bakes, a sample large enough at demo traffic. */
const DEMO_CANARY = { steps: [10, 50, 100], bakeTime: '8s', minRequests: 30 };
/** The demo's staging stage: every default (200 holdout rows, parity 1e-6, p99 SLO 250 ms). */
const DEMO_STAGING = {};

/** Without a terminal (CI, a pipe) the demo waits this long for a human approval, then ends. */
const UNATTENDED_APPROVAL_WAIT_MS = 5 * 60_000;
/** How long the unattended demo waits for its cancelled pipeline to end before closing anyway. */
const UNATTENDED_CANCEL_WAIT_MS = 60_000;

function lockDemo(lockPath: string): () => void {
  mkdirSync(path.dirname(lockPath), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(lockPath, 'utf8').trim());
      let alive = false;
      try {
        if (Number.isInteger(owner) && owner > 0) alive = process.kill(owner, 0);
      } catch {
        alive = false;
      }
      if (alive) {
        throw new Error(
          `another demo (pid ${owner}) is using ${path.dirname(lockPath)}; wait for it, or give this one its own MLOPS_STATE_DIR`,
        );
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new Error(`could not take the demo lock ${lockPath}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'auto-approve': { type: 'boolean', default: false },
      'bad-canary': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      seed: { type: 'string', default: String(DEMO_SEED) },
    },
  });
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`--seed must be a non-negative integer, got ${values.seed}`);

  const stateDir = path.join(STATE_DIR, 'demo');
  const releaseLock = lockDemo(`${stateDir}.lock`);
  process.once('exit', releaseLock);
  rmSync(stateDir, { recursive: true, force: true });
  console.log('== starting the local stack (the first run builds the tools; later runs reuse them)');
  const stack: Stack = await startStack({ stateDir, persistent: true, ui: true });
  const serving = new DemoServing();
  try {
    console.log(`   Temporal ${stack.temporal.address}   UI ${stack.temporal.uiUrl}`);
    console.log(`   MLflow   ${stack.mlflow.trackingUri}`);

    const dataDir = path.join(stateDir, 'data');
    mkdirSync(dataDir, { recursive: true });
    const files = {
      lastMonth: path.join(dataDir, 'fraud-2026-10.csv'),
      thisMonth: path.join(dataDir, 'fraud-2026-11.csv'),
      holdout: path.join(dataDir, 'fraud-2026-11-holdout.csv'),
    };
    await writeCsv(files.lastMonth, generateFraudDataset({ rows: DEMO_FIRST_ROWS, seed }));
    await writeCsv(files.thisMonth, generateFraudDataset({ rows: DEMO_SECOND_ROWS, seed: seed + 1 }));
    await writeCsv(files.holdout, generateFraudDataset({ rows: DEMO_HOLDOUT_ROWS, seed: seed + 1000 }));
    console.log(
      `== generated synthetic transactions in ${dataDir}: October ${DEMO_FIRST_ROWS} rows, November ${DEMO_SECOND_ROWS}, holdout ${DEMO_HOLDOUT_ROWS}`,
    );

    // The approvers' keys: the worker reads only the public ones (the policy's publicKeyFile entries).
    const workflowId = retrainWorkflowId(MODEL);
    const keysDir = path.join(stateDir, APPROVER_KEYS_SUBDIR);
    const keyFiles: Record<string, string> = {};
    for (const id of DEMO_APPROVERS) keyFiles[id] = writeApproverKeyPair(keysDir, id).privateKeyPath;
    console.log(
      `== approver keys for ${DEMO_APPROVERS.join(', ')} in ${keysDir} (private keys owner-only; the policy requires signed approvals)`,
    );
    const signedApproval = (approver: string, version: string, comment: string) =>
      buildApprovalRequest({
        workflowId,
        decision: 'approve',
        approver,
        modelVersion: version,
        comment,
        privateKey: loadPrivateKey({ file: keyFiles[approver] ?? '' }),
      }).updateArg;

    const config = loadWorkerConfig({
      ...process.env,
      MLFLOW_TRACKING_URI: stack.mlflow.trackingUri,
      MLOPS_STATE_DIR: stateDir,
      MLOPS_APPROVER_KEYS_DIR: keysDir,
    });
    const workerConnection = await NativeConnection.connect({ address: stack.temporal.address });
    const worker = await createWorker({
      connection: workerConnection,
      config,
      ports: { router: serving.trafficRouter, kpi: serving.kpi },
    });
    const connection = await Connection.connect({ address: stack.temporal.address });
    const client = new Client({ connection });
    const mlflow = new MlflowClient({ trackingUri: stack.mlflow.trackingUri });
    const uiLink = (runId: string) =>
      `${stack.temporal.uiUrl}/namespaces/default/workflows/${workflowId}/${runId}/history`;

    const run = async (
      dataset: string,
      month: string,
      trigger: RetrainingInput['trigger'],
      canary?: RetrainingInput['canary'],
    ): Promise<WorkflowHandleWithFirstExecutionRunId> => {
      const input: RetrainingInput = {
        ...(canary ? { canary, staging: DEMO_STAGING } : {}),
        model: MODEL,
        dataset: { uri: pathToFileURL(dataset).href },
        holdout: { uri: pathToFileURL(files.holdout).href },
        trigger,
        initiator: INITIATOR,
        codeVersion: process.env.MLOPS_CODE_VERSION ?? 'demo',
      };
      const handle = await client.workflow.start(WORKFLOW_TYPES.retrainingPipeline, {
        taskQueue: config.taskQueue,
        workflowId,
        args: [input],
      });
      console.log(`\n== ${month}: started ${WORKFLOW_TYPES.retrainingPipeline} ${workflowId}`);
      console.log(`   ${uiLink(handle.firstExecutionRunId)}`);
      return handle;
    };

    const outcome = await worker.runUntil(async () => {
      // 1. Seed the champion from last month's data.
      const first = await run(files.lastMonth, 'October', { kind: 'manual', by: INITIATOR });
      const firstStatus = await waitForStage(first, (s) => s.stage === 'awaiting-approval');
      describeEvaluation(firstStatus);
      if (firstStatus.stage === 'awaiting-approval' && firstStatus.candidate) {
        const r = await first.executeUpdate(submitApprovalUpdate, {
          args: [signedApproval('alice', firstStatus.candidate.version, 'first model for this product')],
        });
        console.log(`   alice approved (signed) via ${ApprovalMessageName.submitUpdate}: ${r.outcome}`);
      }
      const firstResult = (await first.result()) as PipelineResult;
      console.log(`   outcome: ${firstResult.outcome}`);

      // The champion goes behind the gateway; customers start calling it.
      const gw = await serving.start({
        trackingUri: stack.mlflow.trackingUri,
        temporalAddress: stack.temporal.address,
        stateDir,
        model: MODEL,
      });
      console.log(`\n== gateway serving ${MODEL}@champion at ${gw.url} (predict key in ${gw.keyFile})`);

      // 2. Retrain on this month's data and face the champion; an approved model goes out as a canary.
      const second = await run(
        files.thisMonth,
        'November',
        { kind: 'new-data', batch: '2026-11' },
        DEMO_CANARY,
      );
      const status = await waitForStage(second, (s) => s.stage === 'awaiting-approval');
      describeEvaluation(status);
      if (status.modelCard) console.log(`   model card: ${status.modelCard}`);
      if (status.stage === 'awaiting-approval' && status.candidate) {
        const version = status.candidate.version;
        console.log(
          '\n== waiting for approval (policy: one of alice [ml-lead], bob or carol [risk-officer]; not the initiator; signed)',
        );
        // prettier-ignore
        const approve = [
          'npm', 'run', 'approve', '--',
          '--model', MODEL, '--version', version, '--approver', 'bob',
          '--key-file', keyFiles.bob ?? '', '--comment', 'reviewed the model card',
        ];
        console.log("   approve (signs with bob's key, sends the submitApproval update) with:");
        console.log(`   TEMPORAL_ADDRESS=${stack.temporal.address} ${approve.map(shellQuote).join(' ')}`);
        console.log(
          `   add --print-command for the equivalent signed \`${path.basename(stack.temporal.cli)} workflow signal --name ${ApprovalMessageName.approveSignal}\` (unsigned approvals are refused)`,
        );
        if (values['auto-approve']) {
          console.log('   --auto-approve: bob signs and approves now');
          await second.executeUpdate(submitApprovalUpdate, {
            args: [signedApproval('bob', version, 'auto-approved by the demo')],
          });
        } else if (!process.stdin.isTTY) {
          // Nobody can answer from here (CI, a pipe): wait a bounded time, then end the demo.
          const minutes = UNATTENDED_APPROVAL_WAIT_MS / 60_000;
          console.log(
            `   no terminal: waiting at most ${minutes} min for that approval, then ending the demo`,
          );
          // The approval is what is waited for (the pipeline then needs the traffic started below for its
          // canary); the stage also leaves awaiting-approval when the wait ends otherwise (expired, cancelled).
          const deadline = Date.now() + UNATTENDED_APPROVAL_WAIT_MS;
          const decided = await waitForStage(
            second,
            (s) => s.stage !== 'awaiting-approval' || Date.now() > deadline,
          );
          if (decided.stage === 'awaiting-approval') {
            // The result's long poll is awaited to its end after the cancel, before the connection closes:
            // a poll left running would retry on the closed channel and crash the process.
            const finished = second.result().then(
              () => true,
              () => true,
            );
            await second.cancel();
            await Promise.race([
              finished,
              new Promise((r) => setTimeout(r, UNATTENDED_CANCEL_WAIT_MS).unref()),
            ]);
            console.log(
              `   no approval within ${minutes} min: the pipeline is cancelled, nothing was promoted`,
            );
            console.log('   run `npm run demo -- --auto-approve` to see the rest of the story unattended');
            return { runId: second.firstExecutionRunId, result: undefined };
          }
        }
      }
      // Customer traffic from here on (evaluation has scored in this process without it): the
      // canary's analyses judge the live answers of both versions.
      const stopTraffic = serving.startTraffic(MODEL);
      const stopFault = new AbortController();
      const injected =
        values['bad-canary'] && status.candidate
          ? serving.injectFaultOnCanary(MODEL, status.candidate.version, stopFault.signal).then((done) => {
              if (done)
                console.log(
                  `   --bad-canary: every answer of v${status.candidate?.version} now fails (injected fault)`,
                );
              return done;
            })
          : Promise.resolve(false);
      if (status.stage === 'awaiting-approval') {
        console.log(
          "\n== staging: the November model on the gateway's staging route (admin only), probed with holdout rows: schema, p99 SLO, serving parity with the evaluation (1e-6)",
        );
        console.log(
          `\n== canary: ${DEMO_CANARY.steps.join('% -> ')}% of live traffic, ${DEMO_CANARY.bakeTime} per step, judged against the champion`,
        );
      }
      const secondResult = (await second.result()) as PipelineResult;
      stopFault.abort();
      await injected;
      const traffic = await stopTraffic();
      console.log(
        `   customer traffic during the run: ${traffic.requests} requests, ${traffic.errors} errors`,
      );
      // December: injected data drift through the gateway; driftMonitor finds it, starts one retraining.
      await (
        await import('./demo-drift')
      ).runDriftChapter({
        client,
        taskQueue: config.taskQueue,
        model: MODEL,
        gatewayUrl: gw.url,
        keyFile: gw.keyFile,
        dataDir,
        seed,
        initiator: INITIATOR,
        mlflowUrl: stack.mlflow.trackingUri,
      });
      // January: a label-flipping attack on the next batch; the screen against history blocks it.
      await (
        await import('./demo-poison')
      ).runPoisonChapter({
        client,
        taskQueue: config.taskQueue,
        model: MODEL,
        dataDir,
        seed,
        initiator: INITIATOR,
        // The champion's training data: November's batch when it was promoted, else October's.
        champion:
          secondResult.outcome === 'promoted'
            ? { rows: DEMO_SECOND_ROWS, seed: seed + 1 }
            : { rows: DEMO_FIRST_ROWS, seed },
      });
      return { runId: second.firstExecutionRunId, result: secondResult };
    });

    const { result } = outcome;
    if (!result) {
      await connection.close();
      await workerConnection.close();
      return;
    }
    console.log(`\n== pipeline finished: ${result.outcome}`);
    for (const d of result.status.decisions) console.log(`   [${d.stage}] ${d.decision}: ${d.reason}`);
    const version = result.status.candidate?.version;
    if (version) {
      const registry = new MlflowModelRegistry(mlflow);
      const mv = await registry.getVersion(MODEL, version);
      const verified = await fetchVerifiedModel(registry, mv);
      const champion = await registry.findVersionByAlias(MODEL, Aliases.champion);
      const previous = await registry.findVersionByAlias(MODEL, Aliases.previousChampion);
      const cardPath = path.join(stateDir, `model-card-${MODEL}-v${version}.md`);
      if (mv.runId)
        writeFileSync(cardPath, await registry.downloadArtifact(mv.runId, 'model_card/model_card.md'));
      console.log('');
      console.log(`model     : ${MODEL}`);
      console.log(`version   : ${version} (aliases: ${mv.aliases.join(', ') || 'none'})`);
      console.log(
        `champion  : v${champion?.version ?? '-'}   previous-champion: v${previous?.version ?? '-'}`,
      );
      console.log(`dataset   : sha256 ${mv.tags[VersionTags.datasetSha256]}`);
      console.log(
        `digests   : ${verified.manifest.files.length} file(s) match manifest ${mv.tags[VersionTags.manifestSha256]}`,
      );
      console.log(`model card: ${cardPath}`);
      console.log(`MLflow    : ${stack.mlflow.trackingUri}/#/models/${MODEL}/versions/${version}`);
    }
    console.log(`Temporal  : ${uiLink(outcome.runId)}`);
    if (result.status.canary) {
      console.log(
        `canary    : ${result.status.canary.workflowId} ${result.status.canary.outcome ?? ''}: ${result.status.canary.reason ?? ''}`,
      );
    }
    if (serving.url) {
      const p = await serving.predictOnce(MODEL);
      console.log(`gateway   : ${serving.url}  POST /v1/models/${MODEL}/predict -> ${p.status} ${p.body}`);
      if (p.timing) console.log(`            Server-Timing: ${p.timing}`);
    }
    console.log(
      `audit     : ${formatAuditVerifyResult(await verifyAuditLog(config.auditLogPath))} (${config.auditLogPath})`,
    );
    await connection.close();
    await workerConnection.close();
    if (values.keep) {
      console.log('\n--keep: the stack stays up; Ctrl-C stops it.');
      await new Promise(() => {});
    }
  } finally {
    await serving.close();
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
