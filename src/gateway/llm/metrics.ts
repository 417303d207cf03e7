/**
 * Prometheus series of the guarded chat route, registered on the gateway's own registry (so `/metrics`
 * and the cluster's aggregation carry them): requests by status and outcome, guard scores and latency
 * per layer, detections by stage, layer or category and action, leaks, tokens, upstream failures.
 */
import client from 'prom-client';

/** Guard latency buckets (seconds): the target is a few milliseconds per message. */
export const GUARD_LATENCY_BUCKETS_S = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1];
/** Request latency buckets (seconds): a chat answer takes from milliseconds (blocked) to a minute. */
export const CHAT_LATENCY_BUCKETS_S = [0.005, 0.025, 0.1, 0.25, 1, 2.5, 5, 10, 30, 60];
/** Score buckets on the guard's common scale (0.5 is detection). */
export const GUARD_SCORE_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

export class ChatMetrics {
  readonly requests: client.Counter<'status' | 'outcome' | 'stream'>;
  readonly duration: client.Histogram<'stream'>;
  readonly guardScore: client.Histogram<'stage' | 'layer'>;
  readonly guardLatency: client.Histogram<'stage'>;
  readonly detections: client.Counter<'stage' | 'layer' | 'action'>;
  readonly leaks: client.Counter<'reason' | 'action'>;
  readonly tokens: client.Counter<'kind'>;
  readonly upstreamErrors: client.Counter<'kind'>;

  constructor(registry: client.Registry) {
    const registers = [registry];
    this.requests = new client.Counter({
      name: 'gateway_llm_requests_total',
      help: 'Chat completion requests by HTTP status, outcome (ok, input_blocked, output_blocked, refused, upstream_error) and streaming',
      labelNames: ['status', 'outcome', 'stream'],
      registers,
    });
    this.duration = new client.Histogram({
      name: 'gateway_llm_request_duration_seconds',
      help: 'Chat completion latency inside the gateway, upstream included',
      labelNames: ['stream'],
      buckets: CHAT_LATENCY_BUCKETS_S,
      registers,
    });
    this.guardScore = new client.Histogram({
      name: 'gateway_llm_guard_score',
      help: 'Guard scores on the common scale (0.5 = detection) by stage (input, output) and layer or category',
      labelNames: ['stage', 'layer'],
      buckets: GUARD_SCORE_BUCKETS,
      registers,
    });
    this.guardLatency = new client.Histogram({
      name: 'gateway_llm_guard_duration_seconds',
      help: 'Time spent in the guard per request by stage',
      labelNames: ['stage'],
      buckets: GUARD_LATENCY_BUCKETS_S,
      registers,
    });
    this.detections = new client.Counter({
      name: 'gateway_llm_guard_detections_total',
      help: 'Guard detections by stage, layer (input) or category (output), and the action taken',
      labelNames: ['stage', 'layer', 'action'],
      registers,
    });
    this.leaks = new client.Counter({
      name: 'gateway_llm_leaks_total',
      help: 'System-prompt leaks detected in output by reason (canary, overlap, coverage) and action',
      labelNames: ['reason', 'action'],
      registers,
    });
    this.tokens = new client.Counter({
      name: 'gateway_llm_tokens_total',
      help: 'Tokens through the chat route by kind (prompt, completion), as the upstream reported or estimated',
      labelNames: ['kind'],
      registers,
    });
    this.upstreamErrors = new client.Counter({
      name: 'gateway_llm_upstream_errors_total',
      help: 'Upstream failures by kind (unreachable, timeout, status, malformed, broken_stream, idle)',
      labelNames: ['kind'],
      registers,
    });
  }
}
