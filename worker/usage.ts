/**
 * What Cloudflare bills, counted where it happens: Durable Object requests (RPC calls and alarms),
 * rows written in Durable Object SQLite, D1 statements and rows written, and Queue messages sent.
 * The counts belong to this isolate; under `wrangler dev` the Worker, the consumer and every
 * Durable Object share one, so they cover the whole system (what `npm run bench` reads).
 */
export interface Usage {
  doRequests: number;
  doRowsWritten: number;
  d1Statements: number;
  d1RowsWritten: number;
  queueMessages: number;
}

export const usage: Usage = { doRequests: 0, doRowsWritten: 0, d1Statements: 0, d1RowsWritten: 0, queueMessages: 0 };

/** Counts the statements of a D1 call and the rows they wrote. */
export function countD1(results: D1Result | D1Result[]): void {
  for (const result of Array.isArray(results) ? results : [results]) {
    usage.d1Statements++;
    usage.d1RowsWritten += result.meta?.rows_written ?? 0;
  }
}
