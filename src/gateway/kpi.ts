/**
 * Live KPI breach detection: per model version, a sliding window of one-second buckets (requests,
 * server errors, OOD requests, a latency histogram) judged against configured limits on an interval.
 * A breach (error rate, p99 latency or OOD rate above its limit, over at least `minRequests`) signals
 * `kpiBreach` to the version's `canaryRollout` workflow (`canary-<model>-v<version>`); a workflow that
 * does not exist (no canary running) is counted and otherwise ignored. Pushes of one metric and version
 * are spaced by a cooldown so a lasting breach sends one signal per window, not one per check.
 *
 * In a cluster, workers record into their own {@link KpiWindow}, and ship {@link KpiDelta}s to the
 * primary, which judges the merged window.
 */
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import {
  canaryWorkflowId,
  KPI_BREACH_SIGNAL,
  type KpiBreach,
  type KpiLimits,
  type KpiMetric,
} from '../core/contracts/gateway';
import { retrainWorkflowId } from '../core/contracts/retraining';

/** Lower edge of the first latency bin (ms); each next bin is {@link LATENCY_BIN_GROWTH} times wider. */
export const LATENCY_BIN_START_MS = 0.25;
/** Growth factor of the latency bins: 25% steps bound the p99 estimate's error to a quarter. */
export const LATENCY_BIN_GROWTH = 1.25;
/** Number of latency bins: up to about 10 s. */
export const LATENCY_BINS = 48;

function latencyBin(ms: number): number {
  if (ms <= LATENCY_BIN_START_MS) return 0;
  const i = Math.ceil(Math.log(ms / LATENCY_BIN_START_MS) / Math.log(LATENCY_BIN_GROWTH));
  return Math.min(LATENCY_BINS - 1, i);
}
const binUpperMs = (i: number): number => LATENCY_BIN_START_MS * LATENCY_BIN_GROWTH ** i;

export interface KpiDelta {
  model: string;
  version: string;
  requests: number;
  errors: number;
  ood: number;
  latencyBins: number[];
}

interface Bucket extends KpiDelta {
  second: number;
}

export interface KpiSnapshot {
  model: string;
  version: string;
  requests: number;
  errorRate: number;
  oodRate: number;
  p99Ms: number;
}

const emptyBins = (): number[] => new Array<number>(LATENCY_BINS).fill(0);

/** Per-version sliding windows of one-second buckets. */
export class KpiWindow {
  private readonly buckets = new Map<string, Bucket[]>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private current(model: string, version: string): Bucket {
    const key = `${model}\u0000${version}`;
    const second = Math.floor(this.now() / 1000);
    let list = this.buckets.get(key);
    if (!list) this.buckets.set(key, (list = []));
    const last = list[list.length - 1];
    if (last && last.second === second) return last;
    const b: Bucket = { model, version, second, requests: 0, errors: 0, ood: 0, latencyBins: emptyBins() };
    list.push(b);
    const oldest = second - Math.ceil(this.windowMs / 1000);
    while (list.length > 0 && (list[0] as Bucket).second <= oldest) list.shift();
    return b;
  }

  record(model: string, version: string, latencyMs: number, serverError: boolean, ood: boolean): void {
    const b = this.current(model, version);
    b.requests++;
    if (serverError) b.errors++;
    if (ood) b.ood++;
    (b.latencyBins[latencyBin(latencyMs)] as number)++;
  }

  ingest(d: KpiDelta): void {
    const b = this.current(d.model, d.version);
    b.requests += d.requests;
    b.errors += d.errors;
    b.ood += d.ood;
    d.latencyBins.forEach((n, i) => (b.latencyBins[i] = (b.latencyBins[i] as number) + n));
  }

  /** Everything recorded since the last drain, one delta per version (for shipping to the primary). */
  drain(): KpiDelta[] {
    const out: KpiDelta[] = [];
    for (const list of this.buckets.values()) {
      const d: KpiDelta | undefined = list.reduce<KpiDelta | undefined>((acc, b) => {
        const a = acc ?? {
          model: b.model,
          version: b.version,
          requests: 0,
          errors: 0,
          ood: 0,
          latencyBins: emptyBins(),
        };
        a.requests += b.requests;
        a.errors += b.errors;
        a.ood += b.ood;
        b.latencyBins.forEach((n, i) => (a.latencyBins[i] = (a.latencyBins[i] as number) + n));
        return a;
      }, undefined);
      if (d && d.requests > 0) out.push(d);
    }
    this.buckets.clear();
    return out;
  }

  snapshots(): KpiSnapshot[] {
    const oldest = Math.floor(this.now() / 1000) - Math.ceil(this.windowMs / 1000);
    const out: KpiSnapshot[] = [];
    for (const list of this.buckets.values()) {
      let requests = 0;
      let errors = 0;
      let ood = 0;
      const bins = emptyBins();
      let model = '';
      let version = '';
      for (const b of list) {
        if (b.second <= oldest) continue;
        ({ model, version } = b);
        requests += b.requests;
        errors += b.errors;
        ood += b.ood;
        b.latencyBins.forEach((n, i) => (bins[i] = (bins[i] as number) + n));
      }
      if (requests === 0) continue;
      let seen = 0;
      let p99Ms = 0;
      for (let i = 0; i < LATENCY_BINS; i++) {
        seen += bins[i] as number;
        if (seen >= 0.99 * requests) {
          p99Ms = binUpperMs(i);
          break;
        }
      }
      out.push({ model, version, requests, errorRate: errors / requests, oodRate: ood / requests, p99Ms });
    }
    return out;
  }
}

/** The breaches of one snapshot under the limits (pure). */
export function judgeKpis(s: KpiSnapshot, limits: KpiLimits): KpiBreach[] {
  if (s.requests < limits.minRequests) return [];
  const window = `${Math.round(limits.windowMs / 1000)}s`;
  const out: KpiBreach[] = [];
  const add = (metric: KpiMetric, value: number, threshold: number) => {
    if (value > threshold) {
      out.push({
        metric,
        value,
        threshold,
        window,
        model: s.model,
        version: s.version,
        requests: s.requests,
      });
    }
  };
  add('error_rate', s.errorRate, limits.maxErrorRate);
  add('latency_p99_ms', s.p99Ms, limits.maxP99Ms);
  add('ood_rate', s.oodRate, limits.maxOodRate);
  return out;
}

export type BreachPushResult = 'sent' | 'no-workflow' | 'error';

/**
 * Signals `kpiBreach` to `canary-<model>-v<version>`, or else to `retrain-<model>` (its kpiGuard);
 * no running workflow is a result, not an error.
 */
export class BreachPusher {
  private client?: Promise<Client>;

  constructor(private readonly temporal: { address: string; namespace: string }) {}

  private connect(): Promise<Client> {
    this.client ??= Connection.connect({ address: this.temporal.address }).then(
      (connection) => new Client({ connection, namespace: this.temporal.namespace }),
    );
    this.client.catch(() => (this.client = undefined));
    return this.client;
  }

  /**
   * Signals the version's canary rollout; once that has ended, the model's pipeline (whose kpiGuard
   * watches a freshly promoted champion and ignores breaches of other versions).
   */
  async push(breach: KpiBreach): Promise<BreachPushResult> {
    if (!breach.model || !breach.version) return 'error';
    for (const workflowId of [
      canaryWorkflowId(breach.model, breach.version),
      retrainWorkflowId(breach.model),
    ]) {
      try {
        const client = await this.connect();
        await client.workflow.getHandle(workflowId).signal(KPI_BREACH_SIGNAL, breach);
        return 'sent';
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) return 'error';
      }
    }
    return 'no-workflow';
  }

  async close(): Promise<void> {
    const c = await this.client?.catch(() => undefined);
    await c?.connection.close();
  }
}

/** Judges the window on an interval and pushes breaches (with a cooldown per metric and version). */
export class KpiMonitor {
  private timer?: NodeJS.Timeout;
  private readonly lastPush = new Map<string, number>();

  constructor(
    readonly window: KpiWindow,
    private readonly limits: KpiLimits,
    private readonly onBreach: (b: KpiBreach) => Promise<void>,
    private readonly onSnapshot: (s: KpiSnapshot) => void = () => {},
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.limits.checkIntervalMs);
    this.timer.unref();
  }

  async check(): Promise<KpiBreach[]> {
    const pushed: KpiBreach[] = [];
    for (const s of this.window.snapshots()) {
      this.onSnapshot(s);
      for (const b of judgeKpis(s, this.limits)) {
        const key = `${s.model}/${s.version}/${b.metric}`;
        const last = this.lastPush.get(key);
        if (last !== undefined && Date.now() - last < this.limits.pushCooldownMs) continue;
        this.lastPush.set(key, Date.now());
        pushed.push(b);
        await this.onBreach(b);
      }
    }
    return pushed;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
