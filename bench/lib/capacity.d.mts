// Types for the capacity model (bench/lib/capacity.mjs), for its unit test beside it.
export interface CapacityLimits {
  d1DatabaseBytes: number;
  d1QueriesPerSecond: number;
  queueMessagesPerSecond: number;
  pruneRowsPerMinute: number;
}
/** What one unit (a run with its event, or an event alone) costs a D1 database and the queue. */
export interface PerUnit {
  d1Bytes: number;
  d1Statements: number;
  queueMessages: number;
}
export type Bound = "storage" | "pruning" | "thread" | "queue";
export interface Capacity {
  shards: number;
  retentionDays: number;
  queues: number;
  bounds: Record<Bound, number>;
  binds: Bound;
  fits: number;
  /** The average ms a statement would take for one database's thread to bind first. */
  threadBindsAtMs: number;
}
export interface CapacityRow extends Record<Bound, number> {
  payload: string;
  retentionDays: number;
  shards: number;
  threadBatched: number;
  binds: Bound;
  fits: number;
  threadBindsAtMs: number;
}
export declare const LIMITS: CapacityLimits;
export declare const SECONDS_PER_MONTH: number;
export declare function capacity(input: { perUnit: PerUnit; retentionDays: number; shards: number; queues?: number; limits?: CapacityLimits }): Capacity;
export declare function spreadStatements(batched: PerUnit, shards: number): PerUnit;
export declare function capacityTable(input: { measured: Record<string, { alone: PerUnit; batched: PerUnit }>; shards: number[]; retentionDays: number[]; limits?: CapacityLimits }): CapacityRow[];
export declare function formatCount(n: number): string;
export declare function formatCapacityTable(rows: CapacityRow[]): string;
