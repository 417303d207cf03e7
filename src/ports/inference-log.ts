/**
 * The inference-log port: every prediction the gateway served (features already redacted), written
 * in partitions by time, read back by window by the drift monitor. The gateway's JSONL writer
 * (`src/gateway/inference-log.ts`) is the embedded implementation.
 */

export interface InferenceRecord {
  /** ISO-8601 time the request was answered. */
  time: string;
  requestId: string;
  model: string;
  version: string;
  /** Which route answered: stable, canary, staging; `shadow` for a mirrored prediction. */
  route: 'stable' | 'canary' | 'staging' | 'shadow';
  /** Input features after PII redaction. */
  features: Record<string, number | string | null>;
  prediction: number;
  ood: boolean;
}

export interface InferenceLog {
  /** Buffers one record; never throws on the request path. */
  append(record: InferenceRecord): void;
  /** Writes out what is buffered. */
  flush(): Promise<void>;
  /** Records of a model answered in [from, to), in time order within each partition. */
  read(model: string, from: Date, to: Date): AsyncIterable<InferenceRecord>;
  close(): Promise<void>;
}
