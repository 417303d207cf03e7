/**
 * Signature checks on the gateway's load path, against the real MLflow server: with trusted keys
 * configured, a version signed by a trusted key is served, while an unsigned one and one signed by
 * another key are refused as integrity failures over the very bytes fetched; `if-signed` serves the
 * unsigned one. The configuration refuses a keys file that is missing or holds no key.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createSecurityActivities } from '../../activities/security';
import { gatewayModelTrust } from '../../src/gateway/app';
import { loadGatewayConfig, parseGatewayConfig } from '../../src/gateway/config';
import { loadVerifiedModel, ModelIntegrityError } from '../../src/gateway/models';
import { MlflowClient } from '../../src/mlflow';
import { MlflowModelRegistry } from '../../src/registry';
import { createFileSecretStore } from '../../src/secrets/local';
import { createModelTrust, ensureSigningKey } from '../../src/security/model-trust';
import { registerModelFiles, trainedModelFiles } from './fixtures';

describe('gateway: model signatures verified on load', () => {
  let dir: string;
  let model: string;
  let registry: MlflowModelRegistry;
  let trustedPem: string;
  let signed: string;
  let unsigned: string;
  let foreign: string;

  beforeAll(async () => {
    const mlflow = new MlflowClient({ trackingUri: inject('mlflowTrackingUri') });
    registry = new MlflowModelRegistry(mlflow);
    dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-gw-sig-'));
    model = `gw-sig-${Math.random().toString(36).slice(2, 8)}`;
    const files = await trainedModelFiles(mlflow, inject('pythonBin'), 41);
    signed = (await registerModelFiles(mlflow, model, files)).version;
    unsigned = (await registerModelFiles(mlflow, model, files)).version;
    foreign = (await registerModelFiles(mlflow, model, files)).version;

    const ours = createFileSecretStore(path.join(dir, 'ours'));
    const theirs = createFileSecretStore(path.join(dir, 'theirs'));
    trustedPem = await ensureSigningKey(ours);
    await ensureSigningKey(theirs);
    const sign = (store: typeof ours, version: string) =>
      createSecurityActivities({ registry, trust: createModelTrust({ store }) }).signModelVersion({
        model,
        version,
      });
    expect((await sign(ours, signed)).ok).toBe(true);
    expect((await sign(theirs, foreign)).ok).toBe(true);
    writeFileSync(path.join(dir, 'trusted.pem'), trustedPem);
  }, 240_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const trustOf = (mode: 'require' | 'if-signed') => {
    const config = parseGatewayConfig({
      mlflowTrackingUri: inject('mlflowTrackingUri'),
      models: [{ name: model }],
      modelSignatures: { trustedKeysFile: path.join(dir, 'trusted.pem'), mode },
    });
    const trust = gatewayModelTrust(config);
    if (!trust) throw new Error('no trust from a configuration with modelSignatures');
    return trust;
  };

  it('serves a version signed by a trusted key, over the bytes it verified', async () => {
    const loaded = await loadVerifiedModel(
      registry,
      model,
      { version: signed },
      { trust: trustOf('require') },
    );
    expect(loaded.version).toBe(signed);
  });

  it('refuses an unsigned version under require, and serves it under if-signed', async () => {
    await expect(
      loadVerifiedModel(registry, model, { version: unsigned }, { trust: trustOf('require') }),
    ).rejects.toBeInstanceOf(ModelIntegrityError);
    const loaded = await loadVerifiedModel(
      registry,
      model,
      { version: unsigned },
      { trust: trustOf('if-signed') },
    );
    expect(loaded.version).toBe(unsigned);
  });

  it('refuses a version signed by a key it does not trust, even under if-signed', async () => {
    for (const mode of ['require', 'if-signed'] as const) {
      const err = await loadVerifiedModel(
        registry,
        model,
        { version: foreign },
        { trust: trustOf(mode) },
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ModelIntegrityError);
      expect((err as Error).message).toMatch(/key|trust/i);
    }
  });

  it('configuration: the environment sets the keys file and mode; a missing or empty file is refused', () => {
    const base = { MLFLOW_TRACKING_URI: inject('mlflowTrackingUri'), MLOPS_GATEWAY_MODELS: model };
    const fromEnv = loadGatewayConfig({
      ...base,
      MLOPS_GATEWAY_TRUSTED_KEYS: path.join(dir, 'trusted.pem'),
      MLOPS_GATEWAY_MODEL_SIGNATURES: 'if-signed',
    });
    expect(fromEnv.modelSignatures).toEqual({
      trustedKeysFile: path.join(dir, 'trusted.pem'),
      mode: 'if-signed',
    });
    expect(loadGatewayConfig(base).modelSignatures).toBeUndefined();
    const cfg = (file: string) =>
      parseGatewayConfig({
        mlflowTrackingUri: inject('mlflowTrackingUri'),
        models: [{ name: model }],
        modelSignatures: { trustedKeysFile: file },
      });
    expect(() => gatewayModelTrust(cfg(path.join(dir, 'absent.pem')))).toThrow(/absent\.pem/);
    writeFileSync(path.join(dir, 'empty.pem'), 'no keys here\n');
    expect(() => gatewayModelTrust(cfg(path.join(dir, 'empty.pem')))).toThrow(/no PEM public key/);
  });
});
