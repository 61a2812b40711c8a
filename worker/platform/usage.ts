/**
 * What Cloudflare bills, counted where it happens: Durable Object requests (RPC calls and alarms),
 * rows written in Durable Object SQLite, D1 statements and rows written, and Queue messages sent.
 * The bindings wrapper (worker/platform/bindings.ts) counts D1, the Queue and RPC calls; RunStore counts its
 * rows, each object's alarm() itself, and setAlarm below each alarm set (billed as a row written). The counts belong to this isolate; under `wrangler dev` the Worker, the consumer and every
 * Durable Object share one, so they cover the whole system (what `npm run bench` reads).
 */
export interface Usage {
  doRequests: number;
  doRowsWritten: number;
  d1Statements: number;
  d1RowsWritten: number;
  queueMessages: number;
  /** R2 Class A operations (puts, lists) and Class B (gets) on the large values bucket. */
  r2ClassA: number;
  r2ClassB: number;
}

export const usage: Usage = { doRequests: 0, doRowsWritten: 0, d1Statements: 0, d1RowsWritten: 0, queueMessages: 0, r2ClassA: 0, r2ClassB: 0 };

/**
 * Sets a Durable Object's alarm, counted: Cloudflare bills each `setAlarm()` of a SQLite-backed object
 * as a row written. Every alarm the engine sets goes through here.
 *
 * @example
 * await setAlarm(this.ctx.storage, Date.now() + 10_000);
 */
export function setAlarm(storage: DurableObjectStorage, at: number): Promise<void> {
  usage.doRowsWritten++;
  return storage.setAlarm(at);
}
