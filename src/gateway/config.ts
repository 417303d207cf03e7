/**
 * The gateway's configuration from the environment (the entry point and the Kubernetes Deployment),
 * optionally on top of a JSON file (`MLOPS_GATEWAY_CONFIG`, e.g. a mounted ConfigMap). Secrets come
 * as files: the API-key and admin-key lists hold sha256 hashes only.
 */
import { readFileSync } from 'node:fs';
import { formatZodError } from '../core/contracts/errors';
import { GatewayConfigSchema, type GatewayConfig, type GatewayConfigInput } from '../core/contracts/gateway';

export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';
}

function jsonFile(file: string, variable: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GatewayConfigError(`${variable}=${file}: ${(err as Error).message}`);
  }
}

function num(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new GatewayConfigError(`${name}: "${v}" is not a number`);
  return n;
}

/** `fraud`, `fraud@champion`, `fraud@3`: a model and the alias or version its stable slot serves. */
export function parseModelList(list: string): GatewayConfigInput['models'] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      const [name, ref] = item.split('@') as [string, string | undefined];
      if (ref === undefined) return { name };
      return /^\d+$/.test(ref) ? { name, stable: { version: ref } } : { name, stable: { alias: ref } };
    });
}

/** Parses the full configuration; a bad value fails with the variable or field it came from. */
export function parseGatewayConfig(input: unknown): GatewayConfig {
  const r = GatewayConfigSchema.safeParse(input);
  if (!r.success) throw new GatewayConfigError(formatZodError(r.error, 'gateway config'));
  return r.data;
}

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const base = (
    env.MLOPS_GATEWAY_CONFIG ? jsonFile(env.MLOPS_GATEWAY_CONFIG, 'MLOPS_GATEWAY_CONFIG') : {}
  ) as Record<string, unknown>;
  const cfg: Record<string, unknown> = { ...base };
  const set = (key: string, v: unknown) => {
    if (v !== undefined && v !== '') cfg[key] = v;
  };
  set('host', env.MLOPS_GATEWAY_HOST);
  set('port', num(env, 'MLOPS_GATEWAY_PORT'));
  set('workers', num(env, 'MLOPS_GATEWAY_WORKERS'));
  set('mlflowTrackingUri', env.MLFLOW_TRACKING_URI);
  if (env.MLOPS_GATEWAY_MODELS) set('models', parseModelList(env.MLOPS_GATEWAY_MODELS));
  if (env.MLOPS_GATEWAY_API_KEYS_FILE)
    set('apiKeys', jsonFile(env.MLOPS_GATEWAY_API_KEYS_FILE, 'MLOPS_GATEWAY_API_KEYS_FILE'));
  if (env.MLOPS_GATEWAY_ADMIN_KEYS_FILE) {
    set('adminKeys', jsonFile(env.MLOPS_GATEWAY_ADMIN_KEYS_FILE, 'MLOPS_GATEWAY_ADMIN_KEYS_FILE'));
  }
  if (env.MLOPS_GATEWAY_JWT_FILE) set('jwt', jsonFile(env.MLOPS_GATEWAY_JWT_FILE, 'MLOPS_GATEWAY_JWT_FILE'));
  const rateLimit = { ...((base.rateLimit as Record<string, unknown> | undefined) ?? {}) };
  if (env.MLOPS_GATEWAY_REDIS_URL)
    Object.assign(rateLimit, { backend: 'redis', redisUrl: env.MLOPS_GATEWAY_REDIS_URL });
  if (num(env, 'MLOPS_GATEWAY_RATE') !== undefined) rateLimit.ratePerSecond = num(env, 'MLOPS_GATEWAY_RATE');
  if (num(env, 'MLOPS_GATEWAY_BURST') !== undefined) rateLimit.burst = num(env, 'MLOPS_GATEWAY_BURST');
  cfg.rateLimit = rateLimit;
  set('accessLog', env.MLOPS_GATEWAY_ACCESS_LOG);
  set('inferenceLogDir', env.MLOPS_GATEWAY_INFERENCE_LOG_DIR);
  if (env.MLOPS_GATEWAY_TRUSTED_KEYS) {
    set('modelSignatures', {
      trustedKeysFile: env.MLOPS_GATEWAY_TRUSTED_KEYS,
      ...(env.MLOPS_GATEWAY_MODEL_SIGNATURES ? { mode: env.MLOPS_GATEWAY_MODEL_SIGNATURES } : {}),
    });
  }
  set('maxBatch', num(env, 'MLOPS_GATEWAY_MAX_BATCH'));
  if (env.MLOPS_GATEWAY_REDACTION !== undefined) set('redaction', env.MLOPS_GATEWAY_REDACTION !== 'off');
  if (env.TEMPORAL_ADDRESS) {
    set('temporal', { address: env.TEMPORAL_ADDRESS, namespace: env.TEMPORAL_NAMESPACE || 'default' });
  }
  return parseGatewayConfig(cfg);
}
