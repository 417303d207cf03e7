/**
 * Contracts of the inference gateway: its configuration, the admin API's payloads, the routing state
 * of a model (the traffic-router port's data), the reference profile OOD detection judges against, and
 * the `kpiBreach` signal payload it pushes to `canaryRollout`.
 *
 * Rules:
 * - Sandbox-safe: zod and plain data only, so workflows (the canary rollout) can import the same shapes.
 * - Every default is a named constant with the reason for its value.
 */
import { z } from 'zod';

/** Largest request body accepted: a feature vector is well under 1 KiB, 64 KiB leaves room for batches. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** Most rows per batched inference call (a batch of 32 fraud rows is about 0.2 ms of CPU). */
export const DEFAULT_MAX_BATCH = 32;
/** Deepest JSON nesting accepted: a predict payload is two levels deep; anything deeper is an attack. */
export const DEFAULT_MAX_JSON_DEPTH = 8;
/** Time a client has to send its request headers and body: bounds slow-loris connections. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Time a client has to send the request headers alone. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 5_000;
/** Idle keep-alive time of a connection: load balancers keep theirs open for about a minute. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** Longest a graceful shutdown waits for in-flight requests before closing connections. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** Token-bucket refill per principal: 50 predictions a second is an interactive client's pace. */
export const DEFAULT_RATE_PER_SECOND = 50;
/** Token-bucket depth: a burst of 100 absorbs a page load without admitting a flood. */
export const DEFAULT_BURST = 100;
/** Clock skew tolerated on JWT exp/nbf/iat: NTP keeps hosts within a second, 5 s leaves margin. */
export const DEFAULT_JWT_CLOCK_TOLERANCE_S = 5;
/** Asymmetric JWT algorithms only: HS* would let anyone holding the verification key sign tokens. */
export const DEFAULT_JWT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
/** |z| of a numeric feature against its training mean beyond which it is out of distribution. */
export const DEFAULT_OOD_MAX_Z = 6;
/** Sliding window of the live KPI check: long enough for a rate, short enough to react within a minute. */
export const DEFAULT_KPI_WINDOW_MS = 60_000;
/** Fewest requests in a window before a KPI is judged: rates over a handful of requests are noise. */
export const DEFAULT_KPI_MIN_REQUESTS = 50;
/** Server error share of a version's requests that is a breach. */
export const DEFAULT_KPI_MAX_ERROR_RATE = 0.05;
/** p99 latency of a version, in milliseconds, that is a breach. */
export const DEFAULT_KPI_MAX_P99_MS = 250;
/** Share of OOD requests that is a breach: a few percent is drift, more is a broken client or an attack. */
export const DEFAULT_KPI_MAX_OOD_RATE = 0.2;
/** How often the KPI windows are judged. */
export const DEFAULT_KPI_CHECK_INTERVAL_MS = 1_000;
/** Least time between two breach pushes of the same metric and version: one signal per window. */
export const DEFAULT_KPI_PUSH_COOLDOWN_MS = 60_000;
/** Inference log partition length: hourly files keep the drift monitor's reads to the window it needs. */
export const DEFAULT_INFERENCE_LOG_PARTITION = 'hour' as const;

const ModelName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be lowercase letters, digits and dashes');
const VersionId = z.string().regex(/^[0-9]{1,12}$/, 'must be a model version number');
const Weight = z.number().min(0).max(1);

/** Which registered version a slot serves: a version number or an alias (`champion`, `challenger`). */
export const ModelRefSchema = z.union([
  z.object({ version: VersionId }).strict(),
  z.object({ alias: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'must be an MLflow alias') }).strict(),
]);
export type ModelRef = z.infer<typeof ModelRefSchema>;

/**
 * Fault injection on one served version, as service meshes offer it (Envoy's and Istio's abort
 * faults): that share of the version's live requests is answered 503 without reaching the model.
 * For rehearsing rollbacks; settable through the admin API only.
 */
export const FaultSchema = z
  .object({ version: VersionId, abortPercent: z.number().min(0).max(100) })
  .strict();
export type Fault = z.infer<typeof FaultSchema>;

/**
 * The routing state of one model: which version is stable, which (if any) is the canary and with what
 * share of traffic, whether the canary runs in shadow (mirrored, never answering), and which version
 * the staging route serves to admin principals.
 */
export const RouteStateSchema = z
  .object({
    model: ModelName,
    stable: VersionId,
    canary: VersionId.optional(),
    /** Share of live traffic answered by the canary (0..1); 0 without a canary. */
    canaryWeight: Weight.default(0),
    /** Mirror every request to the canary, answer from stable, compare predictions. */
    shadow: z.boolean().default(false),
    /** Version served on the staging route (`X-Mlops-Route: staging`) to admin principals only. */
    staging: VersionId.optional(),
    /** Sticky routing: the same request key always lands on the same version. */
    sticky: z.boolean().default(true),
    /** An injected abort fault (rollback rehearsals); absent normally. */
    fault: FaultSchema.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.canary === undefined && s.canaryWeight > 0) {
      ctx.addIssue({ code: 'custom', path: ['canaryWeight'], message: 'must be 0 without a canary version' });
    }
    if (s.canary === undefined && s.shadow) {
      ctx.addIssue({ code: 'custom', path: ['shadow'], message: 'needs a canary version to mirror to' });
    }
  });
export type RouteState = z.output<typeof RouteStateSchema>;

/** Admin API `PUT /admin/v1/models/<model>/route`: every field optional, merged into the current state. */
export const RouteUpdateSchema = z
  .object({
    stable: VersionId.optional(),
    canary: VersionId.nullable().optional(),
    canaryWeight: Weight.optional(),
    shadow: z.boolean().optional(),
    staging: VersionId.nullable().optional(),
    sticky: z.boolean().optional(),
    fault: FaultSchema.nullable().optional(),
  })
  .strict();
export type RouteUpdate = z.infer<typeof RouteUpdateSchema>;

export const PrincipalRoleSchema = z.enum(['predict', 'admin', 'explain']);
export type PrincipalRole = z.infer<typeof PrincipalRoleSchema>;

/** An API key as stored: its sha256 (hex) only, never the key. */
export const ApiKeyEntrySchema = z
  .object({
    principal: z.string().min(1).max(128),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the hex sha256 of the key'),
    roles: z.array(PrincipalRoleSchema).min(1),
  })
  .strict();
export type ApiKeyEntry = z.infer<typeof ApiKeyEntrySchema>;

export const JwtConfigSchema = z
  .object({
    issuer: z.string().min(1),
    audience: z.string().min(1),
    /** A JWKS URL or the key set itself. */
    jwksUrl: z.url().optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    algorithms: z
      .array(z.string().min(2))
      .min(1)
      .default([...DEFAULT_JWT_ALGORITHMS]),
    clockToleranceSeconds: z.number().nonnegative().default(DEFAULT_JWT_CLOCK_TOLERANCE_S),
    /** Claim holding the roles (a string array or a space-separated string). */
    rolesClaim: z.string().default('roles'),
  })
  .strict()
  .superRefine((j, ctx) => {
    if ((j.jwksUrl === undefined) === (j.jwks === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['jwksUrl'], message: 'give exactly one of jwksUrl or jwks' });
    }
    j.algorithms.forEach((a, i) => {
      if (a === 'none' || a.startsWith('HS')) {
        ctx.addIssue({
          code: 'custom',
          path: ['algorithms', i],
          message: `${a} is not allowed: only asymmetric algorithms verify tokens`,
        });
      }
    });
  });
export type JwtConfig = z.output<typeof JwtConfigSchema>;

export const RateLimitConfigSchema = z
  .object({
    backend: z.enum(['memory', 'redis']).default('memory'),
    redisUrl: z.string().optional(),
    ratePerSecond: z.number().positive().default(DEFAULT_RATE_PER_SECOND),
    burst: z.number().int().positive().default(DEFAULT_BURST),
    /** Key prefix in Redis, so several gateways can share one Redis. */
    prefix: z.string().default('mlops:rl:'),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.backend === 'redis' && !r.redisUrl) {
      ctx.addIssue({ code: 'custom', path: ['redisUrl'], message: 'required with backend "redis"' });
    }
  });
export type RateLimitConfig = z.output<typeof RateLimitConfigSchema>;

export const KpiLimitsSchema = z
  .object({
    windowMs: z.number().int().positive().default(DEFAULT_KPI_WINDOW_MS),
    minRequests: z.number().int().positive().default(DEFAULT_KPI_MIN_REQUESTS),
    maxErrorRate: z.number().min(0).max(1).default(DEFAULT_KPI_MAX_ERROR_RATE),
    maxP99Ms: z.number().positive().default(DEFAULT_KPI_MAX_P99_MS),
    maxOodRate: z.number().min(0).max(1).default(DEFAULT_KPI_MAX_OOD_RATE),
    checkIntervalMs: z.number().int().positive().default(DEFAULT_KPI_CHECK_INTERVAL_MS),
    pushCooldownMs: z.number().int().nonnegative().default(DEFAULT_KPI_PUSH_COOLDOWN_MS),
  })
  .strict();
export type KpiLimits = z.output<typeof KpiLimitsSchema>;

export const OodPolicySchema = z.enum(['off', 'flag', 'block']);
export type OodPolicy = z.infer<typeof OodPolicySchema>;

/** A model the gateway serves: where its stable version comes from and how its inputs are judged. */
export const ServedModelSchema = z
  .object({
    name: ModelName,
    stable: ModelRefSchema.default({ alias: 'champion' }),
    canary: ModelRefSchema.optional(),
    canaryWeight: Weight.default(0),
    ood: OodPolicySchema.default('flag'),
    maxZ: z.number().positive().default(DEFAULT_OOD_MAX_Z),
  })
  .strict();
export type ServedModel = z.output<typeof ServedModelSchema>;

export const GatewayConfigSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Processes serving requests; 0 means one per core. */
    workers: z.number().int().min(0).default(0),
    mlflowTrackingUri: z.string().min(1),
    models: z.array(ServedModelSchema).min(1),
    apiKeys: z.array(ApiKeyEntrySchema).default([]),
    /** Keys of the admin API, authenticated apart from the predict API. */
    adminKeys: z.array(ApiKeyEntrySchema).default([]),
    jwt: JwtConfigSchema.optional(),
    rateLimit: RateLimitConfigSchema.prefault({}),
    maxBodyBytes: z.number().int().positive().default(DEFAULT_MAX_BODY_BYTES),
    maxJsonDepth: z.number().int().positive().default(DEFAULT_MAX_JSON_DEPTH),
    requestTimeoutMs: z.number().int().positive().default(DEFAULT_REQUEST_TIMEOUT_MS),
    headersTimeoutMs: z.number().int().positive().default(DEFAULT_HEADERS_TIMEOUT_MS),
    keepAliveTimeoutMs: z.number().int().positive().default(DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
    shutdownGraceMs: z.number().int().positive().default(DEFAULT_SHUTDOWN_GRACE_MS),
    redaction: z.boolean().default(true),
    /**
     * Most rows per inference call: predictions asked for within one event-loop turn share a call
     * (src/gateway/batching.ts); 1 runs one call per request.
     */
    maxBatch: z.number().int().min(1).max(1024).default(DEFAULT_MAX_BATCH),
    /** Where the access log goes: a file path, or `stdout`; `off` for none. */
    accessLog: z.string().default('stdout'),
    /** Folder of the inference log partitions; none without it. */
    inferenceLogDir: z.string().optional(),
    /**
     * Model signatures checked on load (over the very bytes served): a PEM file of the trusted
     * public keys, and whether an unsigned version is refused (`require`) or served (`if-signed`).
     * Without it the gateway checks digests and formats only.
     */
    modelSignatures: z
      .object({
        trustedKeysFile: z.string().min(1),
        mode: z.enum(['require', 'if-signed']).default('require'),
      })
      .strict()
      .optional(),
    kpi: KpiLimitsSchema.prefault({}),
    /** Temporal connection for the KPI breach push; no push without it. */
    temporal: z.object({ address: z.string().min(1), namespace: z.string().default('default') }).optional(),
  })
  .strict();
export type GatewayConfig = z.output<typeof GatewayConfigSchema>;
export type GatewayConfigInput = z.input<typeof GatewayConfigSchema>;

export const KpiMetricSchema = z.enum(['error_rate', 'latency_p99_ms', 'ood_rate']);
export type KpiMetric = z.infer<typeof KpiMetricSchema>;

/** Payload of the `kpiBreach` signal on `canaryRollout` (workflow id `canary-<model>-v<version>`). */
export const KpiBreachSchema = z
  .object({
    metric: KpiMetricSchema,
    value: z.number(),
    threshold: z.number(),
    /** The sliding window the value was measured over, e.g. `60s`. */
    window: z.string().min(1),
    model: ModelName.optional(),
    version: VersionId.optional(),
    requests: z.number().int().nonnegative().optional(),
  })
  .strict();
export type KpiBreach = z.infer<typeof KpiBreachSchema>;

export const KPI_BREACH_SIGNAL = 'kpiBreach';
/** The canary rollout's workflow id for a model version (the public contract). */
export const canaryWorkflowId = (model: string, version: string): string => `canary-${model}-v${version}`;

/** The reference profile OOD detection compares inputs with (per-feature range, mean and spread, vocabulary). */
export const ReferenceProfileSchema = z
  .object({
    numeric: z.array(
      z
        .object({
          name: z.string(),
          min: z.number().optional(),
          max: z.number().optional(),
          mean: z.number().optional(),
          std: z.number().nonnegative().optional(),
        })
        .strict(),
    ),
    categorical: z.array(z.object({ name: z.string(), categories: z.array(z.string()) }).strict()),
  })
  .strict();
export type ReferenceProfile = z.infer<typeof ReferenceProfileSchema>;
