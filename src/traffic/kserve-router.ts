/**
 * The traffic-router port over a KServe `InferenceService` (serving.kserve.io/v1beta1), through the
 * Kubernetes custom objects API. KServe splits traffic between the latest revision of the
 * predictor and the last one rolled out: `spec.predictor.canaryTrafficPercent` is the latest
 * revision's share. So:
 *
 * - a canary is the predictor's `model.storageUri` pointing at the canary version, with
 *   `canaryTrafficPercent` its weight in percent;
 * - a rollback is `canaryTrafficPercent: 0` (KServe then routes everything to the previous rolled
 *   out revision, the stable one, without starting a new revision);
 * - a promotion removes `canaryTrafficPercent` (the latest revision, the canary, takes 100%).
 *
 * Which version each revision serves is kept in annotations of the InferenceService
 * (`serving.mlops.io/stable-version`, `.../canary-version`), since KServe knows only storage URIs;
 * without them the stable version is read from the storage URI through the configured template.
 *
 * Reading state back: `getRoute` reports what KServe *routes*, from `status.components.predictor
 * .traffic`, and only once the controller has observed the InferenceService's current generation;
 * before that it throws {@link KServeRolloutPendingError} (retryable), so a caller that verifies a
 * change by reading it back (a rollback, say) only sees it done when KServe really did it.
 * Updates are idempotent (a state already asked for patches nothing) and guarded by the object's
 * resourceVersion (a concurrent change is a retryable {@link KServeConflictError}). Shadow
 * mirroring, a staging route, sticky routing and fault injection are the gateway's, not KServe's:
 * asking for them is a {@link KServeUnsupportedError}.
 */
import * as k8s from '@kubernetes/client-node';
import { z } from 'zod';
import { formatZodError } from '../core/contracts/errors';
import { RouteStateSchema, type RouteState, type RouteUpdate } from '../core/contracts/gateway';
import type { TrafficRouter } from '../ports/traffic-router';
import { RouterRefusedError, RouterUnavailableError } from './gateway-router';

/** KServe's API group, version and resource. */
export const KSERVE_GROUP = 'serving.kserve.io';
export const KSERVE_VERSION = 'v1beta1';
export const KSERVE_PLURAL = 'inferenceservices';
/** Annotations naming the versions the InferenceService's revisions serve. */
export const STABLE_VERSION_ANNOTATION = 'serving.mlops.io/stable-version';
export const CANARY_VERSION_ANNOTATION = 'serving.mlops.io/canary-version';
/** The version last rolled back (its revision stays latest at 0% until the next canary). */
export const ROLLED_BACK_VERSION_ANNOTATION = 'serving.mlops.io/rolled-back-version';
/** Field manager named in every patch (shows who changed the split in managedFields). */
export const FIELD_MANAGER = 'mlops-kserve-router';

/**
 * Gives an error its own class name at run time. The router errors extend the port's two error
 * classes (refused: permanent, unavailable: retryable), which the activities map to failure types;
 * those declare `name` as a literal type, so a subclass names itself here instead.
 */
function named<T extends Error>(err: T, name: string): T {
  Object.defineProperty(err, 'name', { value: name, enumerable: false, configurable: true });
  return err;
}

/** An InferenceService or its state is not what this router can drive: retrying cannot help. */
export class KServeRouterError extends RouterRefusedError {
  constructor(message: string, status: number) {
    super(message, status);
    named(this, new.target.name);
  }
}
/** The model has no InferenceService of this router's (getRoute answers undefined instead). */
export class InferenceServiceNotFoundError extends KServeRouterError {}
/** The update asks for something KServe's InferenceService cannot do (shadow, staging, fault, sticky). */
export class KServeUnsupportedError extends KServeRouterError {}
/** The InferenceService's spec or status has a shape this router does not drive. */
export class InferenceServiceShapeError extends KServeRouterError {}
/** The KServe controller has not yet observed the latest spec: the routed split is not known yet. */
export class KServeRolloutPendingError extends RouterUnavailableError {
  constructor(message: string) {
    super(message);
    named(this, new.target.name);
  }
}
/** Someone changed the InferenceService between read and patch (HTTP 409): read again and retry. */
export class KServeConflictError extends RouterUnavailableError {
  constructor(message: string) {
    super(message);
    named(this, new.target.name);
  }
}

export const KServeRouterConfig = z
  .object({
    /** Namespace of the InferenceServices. */
    namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a namespace name'),
    /** Storage URI of a model version; `{model}` and `{version}` are replaced. */
    storageUriTemplate: z
      .string()
      .min(1)
      .refine((t) => t.includes('{version}'), 'must contain {version}'),
    /** InferenceService name of a model; `{model}` is replaced (default: the model name). */
    nameTemplate: z
      .string()
      .min(1)
      .refine((t) => t.includes('{model}'), 'must contain {model}')
      .default('{model}'),
  })
  .strict();
export type KServeRouterConfig = z.input<typeof KServeRouterConfig>;

const TrafficTarget = z.object({
  revisionName: z.string().optional(),
  percent: z.number().int().min(0).max(100).optional(),
  latestRevision: z.boolean().optional(),
  tag: z.string().optional(),
});

/** The parts of an InferenceService this router reads (the rest passes through untouched). */
const InferenceService = z.object({
  metadata: z.object({
    name: z.string(),
    generation: z.number().int().optional(),
    resourceVersion: z.string().optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.object({
    predictor: z.object({
      canaryTrafficPercent: z.number().int().min(0).max(100).optional(),
      model: z.object({ storageUri: z.string().optional() }).loose().optional(),
    }),
  }),
  status: z
    .object({
      observedGeneration: z.number().int().optional(),
      components: z
        .object({ predictor: z.object({ traffic: z.array(TrafficTarget).optional() }).optional() })
        .optional(),
    })
    .optional(),
});
type InferenceService = z.infer<typeof InferenceService>;

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(model|version)\}/g, (_, k: string) => values[k] ?? '');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function apiCode(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? err.code : undefined;
}

function apiMessage(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    const body: unknown = err.body;
    const parsed = z.object({ message: z.string() }).safeParse(
      typeof body === 'string'
        ? (() => {
            try {
              return JSON.parse(body) as unknown;
            } catch {
              return { message: body.slice(0, 300) };
            }
          })()
        : body,
    );
    return `HTTP ${err.code}: ${parsed.success ? parsed.data.message : 'no message'}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The desired versions and weight (what the spec and annotations ask for). */
interface Desired {
  stable: string;
  canary?: string;
  canaryWeight: number;
  rolledBack?: string;
}

export class KServeTrafficRouter implements TrafficRouter {
  readonly kind = 'kserve';
  private readonly config: z.output<typeof KServeRouterConfig>;
  private readonly api: k8s.CustomObjectsApi;

  constructor(config: KServeRouterConfig, kubeConfig: k8s.KubeConfig) {
    const parsed = KServeRouterConfig.safeParse(config);
    if (!parsed.success)
      throw new KServeRouterError(`kserve router config: ${formatZodError(parsed.error)}`, 0);
    this.config = parsed.data;
    this.api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  }

  /** The InferenceService name of a model. */
  serviceName(model: string): string {
    return fill(this.config.nameTemplate, { model });
  }

  storageUri(model: string, version: string): string {
    return fill(this.config.storageUriTemplate, { model, version });
  }

  private where(model: string): string {
    return `InferenceService ${this.config.namespace}/${this.serviceName(model)}`;
  }

  private async read(model: string): Promise<InferenceService | undefined> {
    let raw: unknown;
    try {
      raw = await this.api.getNamespacedCustomObject({
        group: KSERVE_GROUP,
        version: KSERVE_VERSION,
        namespace: this.config.namespace,
        plural: KSERVE_PLURAL,
        name: this.serviceName(model),
      });
    } catch (err) {
      const code = apiCode(err);
      if (code === 404) return undefined;
      if (code !== undefined && code >= 400 && code < 500 && code !== 429) {
        throw new KServeRouterError(`read ${this.where(model)}: ${apiMessage(err)}`, code);
      }
      throw new RouterUnavailableError(`read ${this.where(model)}: ${apiMessage(err)}`);
    }
    const parsed = InferenceService.safeParse(raw);
    if (!parsed.success) {
      throw new InferenceServiceShapeError(`${this.where(model)}: ${formatZodError(parsed.error)}`, 0);
    }
    return parsed.data;
  }

  /** What the spec and annotations ask for. */
  private desired(model: string, isvc: InferenceService): Desired {
    const a = isvc.metadata.annotations ?? {};
    const predictor = isvc.spec.predictor;
    let stable = a[STABLE_VERSION_ANNOTATION];
    if (!stable) {
      // An InferenceService made by hand: its storage URI names the version it serves.
      const uri = predictor.model?.storageUri ?? '';
      const pattern = new RegExp(
        `^${escapeRegExp(this.config.storageUriTemplate)
          .replace(escapeRegExp('{model}'), escapeRegExp(model))
          .replace(escapeRegExp('{version}'), '([0-9]{1,12})')}$`,
      );
      stable = pattern.exec(uri)?.[1];
    }
    if (!stable) {
      throw new InferenceServiceShapeError(
        `${this.where(model)}: no ${STABLE_VERSION_ANNOTATION} annotation, and spec.predictor.model.storageUri ` +
          `"${predictor.model?.storageUri ?? ''}" does not match ${this.config.storageUriTemplate}`,
        0,
      );
    }
    const canary = a[CANARY_VERSION_ANNOTATION];
    return {
      stable,
      ...(canary ? { canary } : {}),
      canaryWeight: canary ? (predictor.canaryTrafficPercent ?? 100) / 100 : 0,
      ...(a[ROLLED_BACK_VERSION_ANNOTATION] ? { rolledBack: a[ROLLED_BACK_VERSION_ANNOTATION] } : {}),
    };
  }

  /** What KServe routes, from the status of the current generation. */
  private routed(model: string, isvc: InferenceService): RouteState {
    const want = this.desired(model, isvc);
    const generation = isvc.metadata.generation ?? 0;
    const observed = isvc.status?.observedGeneration;
    const traffic = isvc.status?.components?.predictor?.traffic;
    if (observed === undefined || observed < generation || !traffic) {
      throw new KServeRolloutPendingError(
        `${this.where(model)}: generation ${generation} not yet observed by the KServe controller ` +
          `(observed ${observed ?? 'none'}${traffic ? '' : ', no predictor traffic in status'})`,
      );
    }
    const latest = traffic.filter((t) => t.latestRevision === true).reduce((n, t) => n + (t.percent ?? 0), 0);
    const total = traffic.reduce((n, t) => n + (t.percent ?? 0), 0);
    if (total !== 100) {
      throw new InferenceServiceShapeError(
        `${this.where(model)}: status.components.predictor.traffic sums to ${total}%, not 100%`,
        0,
      );
    }
    // The latest revision serves the canary, or the version just rolled back while it still gets traffic.
    const canary = want.canary ?? (want.rolledBack && latest > 0 ? want.rolledBack : undefined);
    const state = {
      model,
      stable: want.stable,
      ...(canary ? { canary, canaryWeight: latest / 100 } : { canaryWeight: 0 }),
      shadow: false,
      sticky: false,
    };
    const r = RouteStateSchema.safeParse(state);
    if (!r.success)
      throw new InferenceServiceShapeError(`${this.where(model)}: ${formatZodError(r.error)}`, 0);
    return r.data;
  }

  async getRoute(model: string): Promise<RouteState | undefined> {
    const isvc = await this.read(model);
    return isvc ? this.routed(model, isvc) : undefined;
  }

  /**
   * Patches the InferenceService toward the merged state and returns the state asked for (what
   * KServe routes is `getRoute`'s, once its controller has observed the change). An update that
   * asks for the state already asked for patches nothing.
   */
  async updateRoute(model: string, update: RouteUpdate): Promise<RouteState> {
    if (update.shadow === true)
      throw new KServeUnsupportedError(`${this.where(model)}: shadow mirroring`, 400);
    if (update.staging) throw new KServeUnsupportedError(`${this.where(model)}: a staging route`, 400);
    if (update.fault) throw new KServeUnsupportedError(`${this.where(model)}: fault injection`, 400);
    if (update.sticky === true) throw new KServeUnsupportedError(`${this.where(model)}: sticky routing`, 400);
    if (
      update.canaryWeight !== undefined &&
      Math.abs(update.canaryWeight * 100 - Math.round(update.canaryWeight * 100)) > 1e-9
    ) {
      throw new KServeUnsupportedError(
        `${this.where(model)}: canaryWeight ${update.canaryWeight} (KServe splits in whole percent)`,
        400,
      );
    }
    const isvc = await this.read(model);
    if (!isvc) throw new InferenceServiceNotFoundError(`${this.where(model)} does not exist`, 404);
    const now = this.desired(model, isvc);

    // The merged desired state, with the gateway's rules: clearing the canary clears its weight.
    const stable = update.stable ?? now.stable;
    let canary = update.canary === null ? undefined : (update.canary ?? now.canary);
    let weight = update.canary === null ? 0 : (update.canaryWeight ?? now.canaryWeight);
    if (canary === stable) canary = undefined;
    if (canary === undefined && weight > 0) {
      throw new KServeRouterError(
        `${this.where(model)}: canaryWeight must be 0 without a canary version`,
        400,
      );
    }
    if (canary === undefined) weight = 0;

    // The spec that gives it: see the module notes.
    const promoting = now.canary !== undefined && canary === undefined && stable === now.canary;
    const rollingBack = now.canary !== undefined && canary === undefined && stable !== now.canary;
    const annotations: Record<string, string | null> = {
      [STABLE_VERSION_ANNOTATION]: stable,
      [CANARY_VERSION_ANNOTATION]: canary ?? null,
    };
    let predictor: { canaryTrafficPercent: number | null; model?: { storageUri: string } };
    if (canary !== undefined) {
      predictor = {
        canaryTrafficPercent: Math.round(weight * 100),
        model: { storageUri: this.storageUri(model, canary) },
      };
      annotations[ROLLED_BACK_VERSION_ANNOTATION] = null;
    } else if (rollingBack) {
      predictor = { canaryTrafficPercent: 0 };
      annotations[ROLLED_BACK_VERSION_ANNOTATION] = now.canary ?? null;
    } else if (promoting || stable === now.stable) {
      predictor = promoting
        ? { canaryTrafficPercent: null }
        : { canaryTrafficPercent: isvc.spec.predictor.canaryTrafficPercent ?? null };
      if (promoting) annotations[ROLLED_BACK_VERSION_ANNOTATION] = null;
    } else {
      // A new stable without a canary phase: the latest revision serves it, all traffic.
      predictor = { canaryTrafficPercent: null, model: { storageUri: this.storageUri(model, stable) } };
      annotations[ROLLED_BACK_VERSION_ANNOTATION] = null;
    }

    const asked = this.askedState(model, stable, canary, weight);
    if (!this.changes(isvc, annotations, predictor)) return asked;
    const body = {
      metadata: { annotations, resourceVersion: isvc.metadata.resourceVersion },
      spec: { predictor },
    };
    let patched: unknown;
    try {
      patched = await this.api.patchNamespacedCustomObject(
        {
          group: KSERVE_GROUP,
          version: KSERVE_VERSION,
          namespace: this.config.namespace,
          plural: KSERVE_PLURAL,
          name: this.serviceName(model),
          body,
          fieldManager: FIELD_MANAGER,
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
    } catch (err) {
      const code = apiCode(err);
      if (code === 409) throw new KServeConflictError(`patch ${this.where(model)}: ${apiMessage(err)}`);
      if (code === 404) throw new InferenceServiceNotFoundError(`${this.where(model)} does not exist`, 404);
      if (code !== undefined && code >= 400 && code < 500 && code !== 429) {
        throw new KServeRouterError(`patch ${this.where(model)}: ${apiMessage(err)}`, code);
      }
      throw new RouterUnavailableError(`patch ${this.where(model)}: ${apiMessage(err)}`);
    }
    const after = InferenceService.safeParse(patched);
    if (!after.success) {
      throw new InferenceServiceShapeError(
        `${this.where(model)} after patch: ${formatZodError(after.error)}`,
        0,
      );
    }
    return this.askedState(model, this.desired(model, after.data).stable, canary, weight);
  }

  private askedState(model: string, stable: string, canary: string | undefined, weight: number): RouteState {
    const r = RouteStateSchema.safeParse({
      model,
      stable,
      ...(canary ? { canary, canaryWeight: weight } : { canaryWeight: 0 }),
      shadow: false,
      sticky: false,
    });
    if (!r.success) throw new KServeRouterError(`${this.where(model)}: ${formatZodError(r.error)}`, 400);
    return r.data;
  }

  /** Whether the patch would change anything (merge-patch semantics: null removes). */
  private changes(
    isvc: InferenceService,
    annotations: Record<string, string | null>,
    predictor: { canaryTrafficPercent: number | null; model?: { storageUri: string } },
  ): boolean {
    const a = isvc.metadata.annotations ?? {};
    for (const [k, v] of Object.entries(annotations)) if ((a[k] ?? null) !== v) return true;
    if ((isvc.spec.predictor.canaryTrafficPercent ?? null) !== predictor.canaryTrafficPercent) return true;
    if (predictor.model && isvc.spec.predictor.model?.storageUri !== predictor.model.storageUri) return true;
    return false;
  }
}
