import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { GatewayTrafficRouter } from '../../src/traffic/gateway-router';
import { KServeTrafficRouter } from '../../src/traffic/kserve-router';
import { createTrafficRouter, TrafficRouterConfigError } from '../../src/traffic/select';

/** A client configuration that names a cluster without contacting it (nothing is called here). */
function offlineKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u', token: 'unused' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

describe('createTrafficRouter: the router a worker environment names', () => {
  it('is the gateway by default when a gateway URL is configured, none without one', () => {
    expect(createTrafficRouter('http://127.0.0.1:9', {})).toBeInstanceOf(GatewayTrafficRouter);
    expect(createTrafficRouter(undefined, {})).toBeUndefined();
    expect(createTrafficRouter(undefined, { MLOPS_TRAFFIC_ROUTER: 'gateway' })).toBeUndefined();
  });

  it('is KServe when asked, with its namespace and storage template', () => {
    const router = createTrafficRouter(
      'http://127.0.0.1:9',
      {
        MLOPS_TRAFFIC_ROUTER: 'kserve',
        MLOPS_KSERVE_NAMESPACE: 'serving',
        MLOPS_KSERVE_STORAGE_URI_TEMPLATE: 's3://models/{model}/{version}',
        MLOPS_KSERVE_NAME_TEMPLATE: '{model}-isvc',
      },
      { kubeConfig: offlineKubeConfig() },
    );
    expect(router).toBeInstanceOf(KServeTrafficRouter);
    const kserve = router as KServeTrafficRouter;
    expect(kserve.serviceName('fraud')).toBe('fraud-isvc');
    expect(kserve.storageUri('fraud', '7')).toBe('s3://models/fraud/7');
  });

  it('refuses an unknown router, missing KServe settings and a bad namespace, naming them', () => {
    expect(() => createTrafficRouter(undefined, { MLOPS_TRAFFIC_ROUTER: 'istio' })).toThrow(
      /MLOPS_TRAFFIC_ROUTER/,
    );
    expect(() =>
      createTrafficRouter(undefined, { MLOPS_TRAFFIC_ROUTER: 'kserve', MLOPS_KSERVE_NAMESPACE: 'serving' }),
    ).toThrow(TrafficRouterConfigError);
    expect(() =>
      createTrafficRouter(
        undefined,
        {
          MLOPS_TRAFFIC_ROUTER: 'kserve',
          MLOPS_KSERVE_NAMESPACE: 'Not_A_Namespace',
          MLOPS_KSERVE_STORAGE_URI_TEMPLATE: 's3://m/{model}/{version}',
        },
        { kubeConfig: offlineKubeConfig() },
      ),
    ).toThrow(/namespace/);
  });
});
