/**
 * The KServe traffic router against the layer's real API server with KServe's own
 * InferenceService CRD installed (from the kserve module, fetched through the Go module proxy).
 * No KServe controller runs here (it needs Knative or a gateway and real pods), so the tests play
 * it: after each change they write the InferenceService's status (observed generation and the
 * predictor's traffic split by revision) the way KServe reports it. What is tested for real: the
 * API server's schema validation of every patch, merge-patch semantics, resourceVersion conflicts,
 * generations, the status subresource, and the router's reading of it.
 */
import * as k8s from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyObjects, loadManifests } from '../../src/stack/kube-cluster';
import { ensureKserveCrd } from '../../src/stack/kube-tools';
import {
  CANARY_VERSION_ANNOTATION,
  InferenceServiceNotFoundError,
  InferenceServiceShapeError,
  KSERVE_GROUP,
  KSERVE_PLURAL,
  KSERVE_VERSION,
  KServeConflictError,
  KServeRolloutPendingError,
  KServeRouterError,
  KServeTrafficRouter,
  KServeUnsupportedError,
  STABLE_VERSION_ANNOTATION,
} from '../../src/traffic/kserve-router';
import { RouterRefusedError, RouterUnavailableError } from '../../src/traffic/gateway-router';
import { PROJECT_ROOT } from '../../src/stack/paths';
import { kubeConfig, workerKubeConfig } from './helpers';

/** Namespace of the test InferenceServices. */
const NAMESPACE = 'mlops-serving';
const STORAGE = 's3://mlops-models/{model}/{version}';
/** How long the CRD may take to be served. */
const CRD_READY_MS = 60_000;

let custom: k8s.CustomObjectsApi;
let router: KServeTrafficRouter;
let seq = 0;

beforeAll(async () => {
  const admin = kubeConfig();
  const crd = loadManifests(readFileSync(ensureKserveCrd(), 'utf8'));
  await applyObjects(admin, crd);
  // The serving namespace and the worker's Role on InferenceServices, as an operator applies them.
  for (const f of ['namespace.yaml', 'role.yaml', 'rolebinding.yaml']) {
    await applyObjects(
      admin,
      loadManifests(readFileSync(path.join(PROJECT_ROOT, 'deploy/k8s/kserve', f), 'utf8')),
    );
  }
  custom = admin.makeApiClient(k8s.CustomObjectsApi);
  const deadline = Date.now() + CRD_READY_MS;
  for (;;) {
    const ok = await custom
      .listNamespacedCustomObject({
        group: KSERVE_GROUP,
        version: KSERVE_VERSION,
        namespace: NAMESPACE,
        plural: KSERVE_PLURAL,
      })
      .then(
        () => true,
        () => false,
      );
    if (ok) break;
    if (Date.now() > deadline) throw new Error('the InferenceService CRD is not served');
    await new Promise((r) => setTimeout(r, 250));
  }
  // The router runs with the worker ServiceAccount's own token (deploy/k8s/kserve's Role).
  router = new KServeTrafficRouter(
    { namespace: NAMESPACE, storageUriTemplate: STORAGE },
    await workerKubeConfig(),
  );
}, 120_000);

interface Isvc {
  metadata: {
    name: string;
    generation: number;
    resourceVersion: string;
    annotations?: Record<string, string>;
  };
  spec: {
    predictor: {
      canaryTrafficPercent?: number;
      model: { storageUri: string; modelFormat: { name: string } };
    };
  };
  status?: unknown;
}

const ref = (name: string) => ({
  group: KSERVE_GROUP,
  version: KSERVE_VERSION,
  namespace: NAMESPACE,
  plural: KSERVE_PLURAL,
  name,
});

async function read(name: string): Promise<Isvc> {
  return (await custom.getNamespacedCustomObject(ref(name))) as Isvc;
}

/** An InferenceService serving `version` of `model`, as an operator would create it (no annotations). */
async function createIsvc(version: string): Promise<string> {
  seq += 1;
  const model = `fraud-ks-${process.pid}-${seq}`;
  await custom.createNamespacedCustomObject({
    group: KSERVE_GROUP,
    version: KSERVE_VERSION,
    namespace: NAMESPACE,
    plural: KSERVE_PLURAL,
    body: {
      apiVersion: `${KSERVE_GROUP}/${KSERVE_VERSION}`,
      kind: 'InferenceService',
      metadata: { name: model, namespace: NAMESPACE },
      spec: {
        predictor: {
          model: {
            modelFormat: { name: 'onnx' },
            storageUri: STORAGE.replace('{model}', model).replace('{version}', version),
          },
        },
      },
    },
  });
  return model;
}

/**
 * Plays the KServe controller for one reconcile: the latest revision (a new one whenever the
 * predictor's model changed) gets canaryTrafficPercent (100 when unset, which also rolls it out),
 * the last rolled-out revision the rest.
 */
const revisions = new Map<string, { latest: number; uri: string; rolledOut: number }>();
async function reconcile(name: string, opts: { observe?: boolean } = {}): Promise<void> {
  const isvc = await read(name);
  const uri = isvc.spec.predictor.model.storageUri;
  const r = revisions.get(name) ?? { latest: 0, uri: '', rolledOut: 0 };
  if (r.uri !== uri) {
    r.latest += 1;
    r.uri = uri;
  }
  const pct = isvc.spec.predictor.canaryTrafficPercent ?? 100;
  if (pct === 100) r.rolledOut = r.latest;
  revisions.set(name, r);
  const rev = (n: number) => `${name}-predictor-${String(n).padStart(5, '0')}`;
  const traffic =
    r.rolledOut === r.latest || r.rolledOut === 0
      ? [{ revisionName: rev(r.latest), percent: 100, latestRevision: true, tag: 'latest' }]
      : [
          { revisionName: rev(r.latest), percent: pct, latestRevision: true, tag: 'latest' },
          { revisionName: rev(r.rolledOut), percent: 100 - pct, latestRevision: false, tag: 'prev' },
        ];
  await custom.patchNamespacedCustomObjectStatus(
    {
      ...ref(name),
      body: {
        status: {
          observedGeneration:
            opts.observe === false ? isvc.metadata.generation - 1 : isvc.metadata.generation,
          components: {
            predictor: { latestReadyRevision: rev(r.latest), latestCreatedRevision: rev(r.latest), traffic },
          },
        },
      },
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('KServe traffic router (InferenceService canaryTrafficPercent)', () => {
  it('the worker may read and patch InferenceServices, nothing more (403 on create, delete, status, Secrets)', async () => {
    const model = await createIsvc('1');
    const kc = await workerKubeConfig();
    const mine = kc.makeApiClient(k8s.CustomObjectsApi);
    const code = (p: Promise<unknown>) =>
      p.then(
        () => 200,
        (e: unknown) => (e instanceof k8s.ApiException ? e.code : -1),
      );
    expect(await code(mine.getNamespacedCustomObject(ref(model)))).toBe(200);
    expect(await code(mine.deleteNamespacedCustomObject(ref(model)))).toBe(403);
    expect(
      await code(
        mine.patchNamespacedCustomObjectStatus(
          { ...ref(model), body: { status: { observedGeneration: 99 } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ),
      ),
    ).toBe(403);
    expect(
      await code(
        mine.createNamespacedCustomObject({
          group: KSERVE_GROUP,
          version: KSERVE_VERSION,
          namespace: NAMESPACE,
          plural: KSERVE_PLURAL,
          body: {
            apiVersion: `${KSERVE_GROUP}/${KSERVE_VERSION}`,
            kind: 'InferenceService',
            metadata: { name: 'x' },
            spec: { predictor: {} },
          },
        }),
      ),
    ).toBe(403);
    expect(await code(kc.makeApiClient(k8s.CoreV1Api).listNamespacedSecret({ namespace: NAMESPACE }))).toBe(
      403,
    );
  });

  it('reads the stable version from the storage URI; a canary, its steps, a promotion, each read back from status', async () => {
    const model = await createIsvc('3');
    await reconcile(model);
    expect(await router.getRoute(model)).toEqual({
      model,
      stable: '3',
      canaryWeight: 0,
      shadow: false,
      sticky: false,
    });

    // Canary at 5%: the predictor points at version 4 with canaryTrafficPercent 5.
    const asked = await router.updateRoute(model, { canary: '4', canaryWeight: 0.05, shadow: false });
    expect(asked).toMatchObject({ stable: '3', canary: '4', canaryWeight: 0.05 });
    let isvc = await read(model);
    expect(isvc.spec.predictor.canaryTrafficPercent).toBe(5);
    expect(isvc.spec.predictor.model.storageUri).toBe(`s3://mlops-models/${model}/4`);
    expect(isvc.metadata.annotations?.[STABLE_VERSION_ANNOTATION]).toBe('3');
    expect(isvc.metadata.annotations?.[CANARY_VERSION_ANNOTATION]).toBe('4');
    // Until KServe has observed the new generation, what is routed is not known: a retryable error.
    const pending = await errorOf(router.getRoute(model));
    expect(pending).toBeInstanceOf(KServeRolloutPendingError);
    expect(pending).toBeInstanceOf(RouterUnavailableError);
    expect((pending as Error).name).toBe('KServeRolloutPendingError');
    expect(String(pending)).toMatch(/generation \d+ not yet observed/);
    await reconcile(model);
    expect(await router.getRoute(model)).toMatchObject({ stable: '3', canary: '4', canaryWeight: 0.05 });

    // The same step again changes nothing (no new generation).
    const generation = (await read(model)).metadata.generation;
    await router.updateRoute(model, { canary: '4', canaryWeight: 0.05, shadow: false });
    expect((await read(model)).metadata.generation).toBe(generation);
    expect(await router.getRoute(model)).toMatchObject({ canary: '4', canaryWeight: 0.05 });

    await router.updateRoute(model, { canary: '4', canaryWeight: 0.5 });
    await reconcile(model);
    expect(await router.getRoute(model)).toMatchObject({ stable: '3', canary: '4', canaryWeight: 0.5 });

    // Promotion: canaryTrafficPercent removed, the latest revision (version 4) takes everything.
    await router.updateRoute(model, { stable: '4', canary: null, canaryWeight: 0, shadow: false });
    isvc = await read(model);
    expect(isvc.spec.predictor.canaryTrafficPercent).toBeUndefined();
    expect(isvc.spec.predictor.model.storageUri).toBe(`s3://mlops-models/${model}/4`);
    expect(isvc.metadata.annotations?.[CANARY_VERSION_ANNOTATION]).toBeUndefined();
    await reconcile(model);
    expect(await router.getRoute(model)).toEqual({
      model,
      stable: '4',
      canaryWeight: 0,
      shadow: false,
      sticky: false,
    });
  });

  it('a rollback routes 0% to the canary (canaryTrafficPercent 0), verified only once KServe reports it', async () => {
    const model = await createIsvc('7');
    await reconcile(model);
    await router.updateRoute(model, { canary: '8', canaryWeight: 0.25 });
    await reconcile(model);
    await router.updateRoute(model, { canary: null, canaryWeight: 0, shadow: false });
    const isvc = await read(model);
    expect(isvc.spec.predictor.canaryTrafficPercent).toBe(0);
    // No new revision: the predictor still names version 8, which gets 0%.
    expect(isvc.spec.predictor.model.storageUri).toBe(`s3://mlops-models/${model}/8`);
    // The controller is slow: status still shows the old generation.
    await reconcile(model, { observe: false });
    expect(await errorOf(router.getRoute(model))).toBeInstanceOf(KServeRolloutPendingError);
    await reconcile(model);
    expect(await router.getRoute(model)).toEqual({
      model,
      stable: '7',
      canaryWeight: 0,
      shadow: false,
      sticky: false,
    });
    // Rolling back again is a no-op; a next canary starts from stable 7.
    const generation = (await read(model)).metadata.generation;
    await router.updateRoute(model, { canary: null, canaryWeight: 0, shadow: false });
    expect((await read(model)).metadata.generation).toBe(generation);
    await router.updateRoute(model, { canary: '9', canaryWeight: 0.05 });
    await reconcile(model);
    expect(await router.getRoute(model)).toMatchObject({ stable: '7', canary: '9', canaryWeight: 0.05 });
  });

  it('a status still routing to a rolled-back canary reads back as that canary with its share', async () => {
    const model = await createIsvc('1');
    await reconcile(model);
    await router.updateRoute(model, { canary: '2', canaryWeight: 0.5 });
    await reconcile(model);
    await router.updateRoute(model, { canary: null, canaryWeight: 0 });
    // A controller that claims the generation but has not moved traffic yet.
    const isvc = await read(model);
    await custom.patchNamespacedCustomObjectStatus(
      {
        ...ref(model),
        body: {
          status: {
            observedGeneration: isvc.metadata.generation,
            components: {
              predictor: {
                traffic: [
                  { revisionName: 'r2', percent: 50, latestRevision: true },
                  { revisionName: 'r1', percent: 50, latestRevision: false },
                ],
              },
            },
          },
        },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(await router.getRoute(model)).toMatchObject({ stable: '1', canary: '2', canaryWeight: 0.5 });
  });

  it('errors are named: missing service, unsupported asks, bad shapes, conflicts; a missing one reads as undefined', async () => {
    expect(await router.getRoute('no-such-model')).toBeUndefined();
    const missing = await errorOf(router.updateRoute('no-such-model', { canaryWeight: 0 }));
    expect(missing).toBeInstanceOf(InferenceServiceNotFoundError);
    expect(missing).toBeInstanceOf(RouterRefusedError);
    expect((missing as Error).name).toBe('InferenceServiceNotFoundError');

    const model = await createIsvc('5');
    await reconcile(model);
    for (const [update, what] of [
      [{ canary: '6', canaryWeight: 0.1, shadow: true }, /shadow/],
      [{ staging: '6' }, /staging/],
      [{ fault: { version: '5', abortPercent: 10 } }, /fault/],
      [{ sticky: true }, /sticky/],
      [{ canary: '6', canaryWeight: 0.125 }, /whole percent/],
    ] as const) {
      const err = await errorOf(router.updateRoute(model, update));
      expect(err, JSON.stringify(update)).toBeInstanceOf(KServeUnsupportedError);
      expect(String(err)).toMatch(what);
    }
    const noCanary = await errorOf(router.updateRoute(model, { canaryWeight: 0.5 }));
    expect(noCanary).toBeInstanceOf(KServeRouterError);
    expect(String(noCanary)).toMatch(/canaryWeight must be 0 without a canary/);

    // A storage URI the template does not describe, and no annotation: the router will not guess.
    await custom.patchNamespacedCustomObject(
      { ...ref(model), body: { spec: { predictor: { model: { storageUri: 'pvc://somewhere/else' } } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const shape = await errorOf(router.getRoute(model));
    expect(shape).toBeInstanceOf(InferenceServiceShapeError);
    expect(String(shape)).toMatch(/does not match s3:\/\/mlops-models/);

    // The API server's own validation of a patch (a percent over 100 is refused by the CRD schema).
    const other = await createIsvc('5');
    await reconcile(other);
    const bogus = await errorOf(
      custom.patchNamespacedCustomObject(
        { ...ref(other), body: { spec: { predictor: { canaryTrafficPercent: 'lots' } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
    );
    expect((bogus as k8s.ApiException<unknown>).code).toBe(422);

    // A change made between the router's read and its patch: a retryable conflict, nothing written.
    const racing = new KServeTrafficRouter(
      { namespace: NAMESPACE, storageUriTemplate: STORAGE },
      kubeConfig(),
    );
    const original = custom.getNamespacedCustomObject.bind(custom);
    const api = (racing as unknown as { api: k8s.CustomObjectsApi }).api;
    const realGet = api.getNamespacedCustomObject.bind(api);
    api.getNamespacedCustomObject = async (param) => {
      const seen = await realGet(param);
      // Someone else edits the object right after the router read it.
      await custom.patchNamespacedCustomObject(
        { ...ref(other), body: { metadata: { annotations: { 'example.com/touched': 'yes' } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      return seen;
    };
    const conflict = await errorOf(racing.updateRoute(other, { canary: '6', canaryWeight: 0.05 }));
    expect(conflict).toBeInstanceOf(KServeConflictError);
    expect(conflict).toBeInstanceOf(RouterUnavailableError);
    expect(((await original(ref(other))) as Isvc).spec.predictor.canaryTrafficPercent).toBeUndefined();

    expect(
      () =>
        new KServeTrafficRouter(
          { namespace: NAMESPACE, storageUriTemplate: 's3://no-version' },
          kubeConfig(),
        ),
    ).toThrow(/storageUriTemplate: must contain \{version\}/);
  });
});
