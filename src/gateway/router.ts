/**
 * The route table: per model, the routing state (stable, canary and its weight, shadow, staging) and
 * the loaded versions it needs. It is the embedded implementation of the traffic-router port.
 *
 * Changing a route is two steps so that a cluster can apply it everywhere or nowhere: `prepare` loads
 * and verifies every version the new state needs (a failure changes nothing), `commit` swaps the state
 * in one assignment and retires versions no longer needed (they finish their in-flight requests first).
 */
import type { z } from 'zod';
import { formatZodError } from '../core/contracts/errors';
import {
  RouteStateSchema,
  type ModelRef,
  type RouteState,
  type RouteUpdate,
  type ServedModel,
} from '../core/contracts/gateway';
import type { TrafficRouter } from '../ports/traffic-router';
import { ModelSlot, type LoadedModel } from './models';
import { OodDetector } from './ood';
import { PredictValidator, type PredictRequest } from './validation';

export interface ServedVersion {
  slot: ModelSlot;
  ood: OodDetector;
  /** What an OOD input gets (the model's configured policy). */
  oodPolicy: ServedModel['ood'];
  schema: z.ZodType<PredictRequest>;
  validator: PredictValidator;
}

interface ModelRoutes {
  config: ServedModel;
  state: RouteState;
  versions: Map<string, ServedVersion>;
}

export type Route = 'stable' | 'canary' | 'staging';

export class RouteError extends Error {
  override readonly name = 'RouteError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** FNV-1a of a key mapped to [0, 1): the same key always lands on the same side of a weight. */
export function stickyFraction(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 0x1_0000_0000;
}

export type ModelLoader = (name: string, ref: ModelRef) => Promise<LoadedModel>;

export interface Prepared {
  model: string;
  next: RouteState;
  loaded: LoadedModel[];
}

export class RouteTable implements TrafficRouter {
  private readonly models = new Map<string, ModelRoutes>();

  constructor(
    private readonly load: ModelLoader,
    private readonly onServed: (
      model: string,
      state: RouteState,
      versions: Map<string, ServedVersion>,
    ) => void = () => {},
  ) {}

  private serve(config: ServedModel, loaded: LoadedModel): ServedVersion {
    const validator = new PredictValidator(loaded.spec);
    return {
      slot: new ModelSlot(loaded),
      ood: new OodDetector(loaded.profile, config.maxZ),
      oodPolicy: config.ood,
      schema: validator.schema,
      validator,
    };
  }

  /** Loads the configured stable (and canary) versions of every model. */
  async init(configs: ServedModel[]): Promise<void> {
    for (const config of configs) {
      const stable = await this.load(config.name, config.stable);
      const versions = new Map([[stable.version, this.serve(config, stable)]]);
      let canary: LoadedModel | undefined;
      if (config.canary) {
        canary = await this.load(config.name, config.canary);
        versions.set(canary.version, this.serve(config, canary));
      }
      const state = RouteStateSchema.parse({
        model: config.name,
        stable: stable.version,
        canary: canary?.version,
        canaryWeight: canary ? config.canaryWeight : 0,
      });
      this.models.set(config.name, { config, state, versions });
      this.onServed(config.name, state, versions);
    }
  }

  has(model: string): boolean {
    return this.models.has(model);
  }

  modelNames(): string[] {
    return [...this.models.keys()];
  }

  /** Percent of `version`'s live requests to answer with an injected fault (0 normally). */
  faultPercent(model: string, version: string): number {
    const fault = this.models.get(model)?.state.fault;
    return fault && fault.version === version ? fault.abortPercent : 0;
  }

  async getRoute(model: string): Promise<RouteState | undefined> {
    return this.models.get(model)?.state;
  }

  /** Merges an update into the state; throws a RouteError (400/404) naming the field. */
  merge(model: string, update: RouteUpdate): RouteState {
    const m = this.models.get(model);
    if (!m) throw new RouteError(`model ${model} is not served here`, 404);
    return mergeRouteState(m.state, update);
  }

  /** Loads whatever the next state needs that is not loaded yet. */
  async prepare(model: string, next: RouteState): Promise<Prepared> {
    const m = this.models.get(model);
    if (!m) throw new RouteError(`model ${model} is not served here`, 404);
    const needed = [next.stable, next.canary, next.staging].filter((v): v is string => v !== undefined);
    const loaded: LoadedModel[] = [];
    try {
      for (const v of new Set(needed)) {
        if (!m.versions.has(v)) loaded.push(await this.load(model, { version: v }));
      }
    } catch (err) {
      await Promise.all(loaded.map((l) => l.session.release()));
      throw err;
    }
    return { model, next, loaded };
  }

  commit(p: Prepared): RouteState {
    const m = this.models.get(p.model);
    if (!m) throw new RouteError(`model ${p.model} is not served here`, 404);
    const versions = new Map(m.versions);
    for (const l of p.loaded) if (!versions.has(l.version)) versions.set(l.version, this.serve(m.config, l));
    const keep = new Set([p.next.stable, p.next.canary, p.next.staging].filter((v) => v !== undefined));
    const retired: ServedVersion[] = [];
    for (const [v, served] of versions) {
      if (!keep.has(v)) {
        versions.delete(v);
        retired.push(served);
      }
    }
    m.versions = versions;
    m.state = p.next;
    this.onServed(p.model, p.next, versions);
    for (const r of retired) void r.slot.retire();
    return p.next;
  }

  /** Drops what a prepare loaded when the change is abandoned. */
  async abandon(p: Prepared): Promise<void> {
    const m = this.models.get(p.model);
    await Promise.all(
      p.loaded
        .filter((l) => !m?.versions.has(l.version))
        .map((l) => l.session.release().catch(() => undefined)),
    );
  }

  async updateRoute(model: string, update: RouteUpdate): Promise<RouteState> {
    return this.commit(await this.prepare(model, this.merge(model, update)));
  }

  /** Applies a state decided elsewhere (the cluster primary) after preparing it. */
  async apply(model: string, next: RouteState): Promise<RouteState> {
    return this.commit(await this.prepare(model, next));
  }

  /**
   * The version a request goes to. `staging` asks for the staging route (admins only, checked by the
   * caller); otherwise the canary gets its weight's share, by the sticky key when given.
   */
  pick(
    model: string,
    key: string | undefined,
    staging: boolean,
  ): { route: Route; served: ServedVersion; shadow?: ServedVersion; state: RouteState } {
    const m = this.models.get(model);
    if (!m) throw new RouteError(`unknown model "${model}"`, 404);
    const s = m.state;
    if (staging) {
      if (s.staging === undefined) throw new RouteError(`model ${model} has no staging version`, 409);
      return { route: 'staging', served: m.versions.get(s.staging) as ServedVersion, state: s };
    }
    const stable = m.versions.get(s.stable) as ServedVersion;
    if (s.canary === undefined) return { route: 'stable', served: stable, state: s };
    const canary = m.versions.get(s.canary) as ServedVersion;
    if (s.shadow) return { route: 'stable', served: stable, shadow: canary, state: s };
    if (s.canaryWeight <= 0) return { route: 'stable', served: stable, state: s };
    const u = s.sticky && key !== undefined ? stickyFraction(key) : Math.random();
    return u < s.canaryWeight
      ? { route: 'canary', served: canary, state: s }
      : { route: 'stable', served: stable, state: s };
  }

  /** The request schema before routing: that of the stable version (all versions share the spec's names). */
  stableSchema(model: string): z.ZodType<PredictRequest> | undefined {
    const m = this.models.get(model);
    return m ? m.versions.get(m.state.stable)?.schema : undefined;
  }

  async close(): Promise<void> {
    for (const m of this.models.values()) {
      await Promise.all([...m.versions.values()].map((v) => v.slot.retire()));
    }
  }
}

/**
 * Merges a route update into a state (`null` clears a field; clearing the canary also zeroes its
 * weight and shadow) and validates the result; throws a RouteError (400) naming the field.
 */
export function mergeRouteState(state: RouteState, update: RouteUpdate): RouteState {
  const merged: Record<string, unknown> = { ...state };
  for (const [k, v] of Object.entries(update)) {
    if (v === null) delete merged[k];
    else if (v !== undefined) merged[k] = v;
  }
  if (update.canary === null) {
    merged.canaryWeight = 0;
    merged.shadow = false;
  }
  const r = RouteStateSchema.safeParse(merged);
  if (!r.success) throw new RouteError(formatZodError(r.error).replace(/\n/g, '; '), 400);
  return r.data;
}
