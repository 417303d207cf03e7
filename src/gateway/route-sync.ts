/**
 * Route state shared by replicas through Redis, so an admin update that reaches one pod behind the
 * Service reaches all of them: the replica that applied an update stores the new state
 * (`<prefix>route:<model>`) and publishes the model's name on `<prefix>routes`; every replica
 * subscribes, reads the stored state and applies it when it differs from its own (loading and
 * verifying any version it does not serve yet). A replica that starts later comes up at the stored
 * state. Used when the rate limits are shared in Redis too (one Redis for the gateway's shared state).
 */
import Redis from 'ioredis';
import { RouteStateSchema, type RouteState } from '../core/contracts/gateway';

export class RedisRouteSync {
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly channel: string;

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly apply: (state: RouteState) => Promise<void>,
    private readonly onError: (model: string, err: Error) => void = () => {},
  ) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 1 });
    this.sub = new Redis(url, { maxRetriesPerRequest: 1 });
    this.redis.on('error', () => {});
    this.sub.on('error', () => {});
    this.channel = `${prefix}routes`;
  }

  private key(model: string): string {
    return `${this.prefix}route:${model}`;
  }

  /** The stored state of a model, if any replica has stored one. */
  async stored(model: string): Promise<RouteState | undefined> {
    const raw = await this.redis.get(this.key(model));
    if (raw === null) return undefined;
    const r = RouteStateSchema.safeParse(JSON.parse(raw));
    return r.success ? r.data : undefined;
  }

  /**
   * Subscribes to updates and brings this replica to the stored states of its models. Redis being
   * unreachable does not stop the replica: it serves its configured state, reports the error, and
   * subscribes (and catches up) once Redis answers.
   */
  async start(models: string[]): Promise<void> {
    const catchUp = async () => {
      for (const model of models) {
        const s = await this.stored(model).catch((err: Error) => (this.onError(model, err), undefined));
        if (s) await this.apply(s).catch((err: Error) => this.onError(model, err));
      }
    };
    this.sub.on('message', (_channel, model: string) => {
      if (!models.includes(model)) return;
      void this.stored(model)
        .then((s) => (s ? this.apply(s) : undefined))
        .catch((err: Error) => this.onError(model, err));
    });
    let subscribed = false;
    this.sub.on('ready', () => {
      if (subscribed) return;
      void this.sub.subscribe(this.channel).then(
        () => {
          subscribed = true;
          return catchUp();
        },
        () => undefined,
      );
    });
    try {
      await this.sub.subscribe(this.channel);
      subscribed = true;
      await catchUp();
    } catch (err) {
      this.onError('*', err as Error);
    }
  }

  async publish(state: RouteState): Promise<void> {
    await this.redis.set(this.key(state.model), JSON.stringify(state));
    await this.redis.publish(this.channel, state.model);
  }

  async close(): Promise<void> {
    await Promise.all([
      this.sub.quit().catch(() => this.sub.disconnect()),
      this.redis.quit().catch(() => this.redis.disconnect()),
    ]);
  }
}

/** Two route states are the same when their fields are (key order aside). */
export function sameRoute(a: RouteState | undefined, b: RouteState): boolean {
  if (!a) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys)
    if ((a as Record<string, unknown>)[k] !== (b as Record<string, unknown>)[k]) return false;
  return true;
}
