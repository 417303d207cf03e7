/**
 * Global setup of the `s3` layer: the stack's real S3 server (s3proxy, objects encrypted at rest) and a real
 * MLflow server whose artifact destination is a bucket on it, both started by the project's own modules with
 * fresh random credentials, stopped with everything they forked at the end.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startMlflowServer } from '../../src/stack/launcher';
import { ensurePythonEnv } from '../../src/stack/provision';
import { randomS3Secrets, startS3Server } from '../../src/stack/s3';

/** Bucket holding MLflow's artifacts. */
export const ARTIFACT_BUCKET = 'mlflow-artifacts';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    s3AccessKeyId: string;
    s3SecretAccessKey: string;
    s3DataDir: string;
    s3MlflowUri: string;
    s3PythonBin: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const pythonBin = ensurePythonEnv();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mlops-s3-stack-'));
  const secrets = randomS3Secrets();
  const started = Date.now();
  const s3 = await startS3Server({ stateDir: path.join(stateDir, 's3'), ...secrets });
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: secrets.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  await client.send(new CreateBucketCommand({ Bucket: ARTIFACT_BUCKET }));
  client.destroy();
  const saved = process.env.MLFLOW_TRACKING_URI;
  delete process.env.MLFLOW_TRACKING_URI;
  const mlflow = await startMlflowServer({
    stateDir: path.join(stateDir, 'mlflow'),
    s3Artifacts: {
      destination: `s3://${ARTIFACT_BUCKET}/mlflow`,
      endpoint: s3.endpoint,
      ...secrets.credentials,
    },
  });
  if (saved !== undefined) process.env.MLFLOW_TRACKING_URI = saved;
  console.log(
    `[s3 stack] s3proxy ${s3.endpoint}, mlflow ${mlflow.endpoint.trackingUri} (${Date.now() - started} ms)`,
  );
  project.provide('s3Endpoint', s3.endpoint);
  project.provide('s3AccessKeyId', secrets.credentials.accessKeyId);
  project.provide('s3SecretAccessKey', secrets.credentials.secretAccessKey);
  project.provide('s3DataDir', s3.dataDir);
  project.provide('s3MlflowUri', mlflow.endpoint.trackingUri);
  project.provide('s3PythonBin', pythonBin);
  return async () => {
    await mlflow.stop();
    await s3.stop();
    rmSync(stateDir, { recursive: true, force: true });
  };
}
