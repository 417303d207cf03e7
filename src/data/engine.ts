/**
 * The analytics engine under the data plane: an embedded DuckDB (through `@duckdb/node-api`) that reads CSV
 * and Parquet files in parallel. One short-lived in-memory database per task, so concurrent activities never
 * share state (DuckDB's reject tables, temp tables) and memory is returned when the task ends.
 *
 * Rules:
 * - Node-only (native engine, file I/O).
 * - SQL is built from identifiers and literals through {@link sqlIdent} and {@link sqlString} only; file paths
 *   and column names never reach SQL unquoted.
 * - Memory is capped at {@link DEFAULT_ENGINE_MEMORY_LIMIT} (or `MLOPS_DATA_ENGINE_MEMORY`); above it DuckDB
 *   spills to a temp folder under the OS temp directory instead of growing.
 * - Threads: one per core unless `MLOPS_DATA_ENGINE_THREADS` caps them (a worker sharing its cores).
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import os from 'node:os';
import path from 'node:path';

/**
 * Engine memory cap: the engine spills beyond it, so a 10M-row profile stays within 2 GB of process memory
 * (about 1.96 GB peak measured with this cap, 2.7 GB with 2GB) at no measured cost in time.
 */
export const DEFAULT_ENGINE_MEMORY_LIMIT = '1GB';
/** Where the engine spills when a query needs more than its memory cap. */
export const ENGINE_TEMP_DIR = path.join(os.tmpdir(), 'mlops-duckdb-spill');

/** A value as the engine hands it back (BIGINT arrives as bigint). */
export type EngineValue = string | number | bigint | boolean | null | undefined | object;
export type EngineRow = Record<string, EngineValue>;

/** A SQL string literal. */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** A quoted SQL identifier. */
export function sqlIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A count or statistic from a result row as a JS number; null stays null. */
export function toNumber(value: EngineValue): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  const n = Number(value);
  return Number.isNaN(n) ? null : n;
}

/** An open engine session: one in-memory database and one connection. */
export interface EngineSession {
  run(sql: string): Promise<void>;
  all(sql: string): Promise<EngineRow[]>;
  close(): void;
}

/** Opens a fresh in-memory database; close it when done (also on errors). */
export async function openEngine(): Promise<EngineSession> {
  const threads = process.env.MLOPS_DATA_ENGINE_THREADS;
  if (threads !== undefined && !/^[1-9]\d{0,3}$/.test(threads)) {
    throw new RangeError(`MLOPS_DATA_ENGINE_THREADS: expected a whole number of threads, got "${threads}"`);
  }
  const instance = await DuckDBInstance.create(':memory:', {
    memory_limit: process.env.MLOPS_DATA_ENGINE_MEMORY ?? DEFAULT_ENGINE_MEMORY_LIMIT,
    temp_directory: ENGINE_TEMP_DIR,
    ...(threads !== undefined && { threads }),
  });
  let connection: DuckDBConnection;
  try {
    connection = await instance.connect();
  } catch (err) {
    instance.closeSync();
    throw err;
  }
  return {
    async run(sql) {
      await connection.run(sql);
    },
    async all(sql) {
      const reader = await connection.runAndReadAll(sql);
      return reader.getRowObjectsJS() as EngineRow[];
    },
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}
