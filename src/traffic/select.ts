/**
 * The traffic router a worker's environment names: the gateway's admin API (embedded default,
 * whenever a gateway URL is configured) or KServe InferenceServices through the Kubernetes API
 * (`MLOPS_TRAFFIC_ROUTER=kserve`, settings from `MLOPS_KSERVE_*`, cluster access like the job
 * runner's: `MLOPS_K8S_KUBECONFIG`, else the in-cluster or default kubeconfig).
 */
import * as k8s from '@kubernetes/client-node';
import { z } from 'zod';
import { formatZodError } from '../core/contracts/errors';
import type { TrafficRouter } from '../ports/traffic-router';
import { GatewayTrafficRouter, RouterRefusedError } from './gateway-router';
import { KServeTrafficRouter } from './kserve-router';

/** A router setting that cannot be used; the message names the variable. */
export class TrafficRouterConfigError extends Error {
  override readonly name = 'TrafficRouterConfigError';
}

const RouterEnv = z.object({
  MLOPS_TRAFFIC_ROUTER: z.enum(['gateway', 'kserve']).default('gateway'),
  MLOPS_KSERVE_NAMESPACE: z.string().min(1).optional(),
  MLOPS_KSERVE_STORAGE_URI_TEMPLATE: z.string().min(1).optional(),
  MLOPS_KSERVE_NAME_TEMPLATE: z.string().min(1).optional(),
  MLOPS_K8S_KUBECONFIG: z.string().min(1).optional(),
});

/** The gateway's admin API as traffic router; its admin key is read from the environment when used. */
export function gatewayRouter(url: string, env: NodeJS.ProcessEnv = process.env): GatewayTrafficRouter {
  return new GatewayTrafficRouter(url, () => {
    const key = env.MLOPS_GATEWAY_ADMIN_KEY;
    if (!key)
      throw new RouterRefusedError(
        'MLOPS_GATEWAY_ADMIN_KEY is not set: the worker cannot call the gateway admin API',
        0,
      );
    return key;
  });
}

/**
 * The configured router, or undefined when none is (no gateway URL and no KServe): pipelines that
 * ask for a canary then fail with the activities' own "no traffic router" error.
 */
export function createTrafficRouter(
  gatewayUrl: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  deps: { kubeConfig?: k8s.KubeConfig } = {},
): TrafficRouter | undefined {
  const r = RouterEnv.safeParse(env);
  if (!r.success) throw new TrafficRouterConfigError(`traffic router: ${formatZodError(r.error)}`);
  const e = r.data;
  if (e.MLOPS_TRAFFIC_ROUTER === 'gateway') return gatewayUrl ? gatewayRouter(gatewayUrl, env) : undefined;
  if (!e.MLOPS_KSERVE_NAMESPACE || !e.MLOPS_KSERVE_STORAGE_URI_TEMPLATE) {
    throw new TrafficRouterConfigError(
      'MLOPS_TRAFFIC_ROUTER=kserve needs MLOPS_KSERVE_NAMESPACE and MLOPS_KSERVE_STORAGE_URI_TEMPLATE (e.g. s3://models/{model}/{version})',
    );
  }
  let kubeConfig = deps.kubeConfig;
  if (!kubeConfig) {
    kubeConfig = new k8s.KubeConfig();
    if (e.MLOPS_K8S_KUBECONFIG) kubeConfig.loadFromFile(e.MLOPS_K8S_KUBECONFIG);
    else kubeConfig.loadFromDefault();
  }
  return new KServeTrafficRouter(
    {
      namespace: e.MLOPS_KSERVE_NAMESPACE,
      storageUriTemplate: e.MLOPS_KSERVE_STORAGE_URI_TEMPLATE,
      ...(e.MLOPS_KSERVE_NAME_TEMPLATE ? { nameTemplate: e.MLOPS_KSERVE_NAME_TEMPLATE } : {}),
    },
    kubeConfig,
  );
}
