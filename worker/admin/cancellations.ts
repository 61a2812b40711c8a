import { ulid } from "ulidx";
import { z } from "zod";
import { compileExpression } from "../../sdk/expression.ts";
import {
  advanceCancellationStatement,
  findCancellation,
  insertCancellationStatement,
  runsToCancel,
  stalledCancellations,
  type CancellationRow,
} from "../db/cancellations.ts";
import type { Env } from "../platform/env.ts";
import { sendMessages } from "../queue/send.ts";
import { runObject } from "../runs/door.ts";
import { StepflareError } from "../platform/errors.ts";
import { createLogger } from "../platform/logger.ts";
import { findFunction } from "../platform/registry.ts";
import type { CancellationView } from "../views/schemas.ts";

/** Runs one page of a bulk cancellation cancels: one queue message each, so no request or batch runs long. */
const PAGE_SIZE = 100;
/** A cancellation whose next page has not come for this long lost its queue message: the tick sends it again. */
export const STALLED_AFTER_MS = 60_000;

const timeSchema = z.union([z.iso.datetime({ offset: true }), z.number().int().nonnegative()]).transform((value) => (typeof value === "number" ? value : Date.parse(value)));

/** `POST /v1/cancellations`' body (Inngest's shape): the function, a range of start times, an optional CEL `if` over `event`. */
export const cancellationRequestSchema = z
  .object({
    function_id: z.string().min(1).max(255),
    app_id: z.string().max(255).optional(),
    started_after: timeSchema.optional(),
    started_before: timeSchema.optional(),
    if: z.string().min(1).max(4096).optional(),
  })
  .strict();


/** A cancellation the API refuses: its function is unknown, or its values cannot be acted on. */
export class CancellationError extends StepflareError {
  override name = "CancellationError";
}

/**
 * Records a bulk cancellation and queues its first page; answers at once. Each page cancels up to
 * PAGE_SIZE unfinished runs of the function started in the range (those whose trigger event
 * satisfies `if`), through the same path as `DELETE /v1/runs/:runId`, then queues the next page.
 *
 * @example
 * const view = await startCancellation(env, { function_id: "import", started_before: Date.now() });
 */
export async function startCancellation(env: Env, request: z.output<typeof cancellationRequestSchema>, now = Date.now()): Promise<CancellationView> {
  if (!findFunction(request.function_id)) throw new CancellationError("function.not_found", `no function with id ${JSON.stringify(request.function_id)}`);
  if (request.if) {
    try {
      compileExpression(request.if, "cancellation");
    } catch (err) {
      throw new CancellationError("request.invalid", (err as Error).message);
    }
  }
  const row = {
    id: ulid(),
    function_id: request.function_id,
    started_after: request.started_after ?? 0,
    started_before: request.started_before ?? now,
    expression: request.if ?? null,
    created_at: now,
    updated_at: now,
  };
  if (row.started_after > row.started_before) throw new CancellationError("request.invalid", "started_after is later than started_before");
  await env.DB.batch([insertCancellationStatement(env.DB, row)]);
  await sendMessages(env, [{ type: "cancel-page", cancellationId: row.id }]);
  return toCancellationView({ ...row, cursor: "", cancelled: 0, done_at: null });
}

/** Works one page of a cancellation and queues the next; a page worked twice cancels nothing twice. */
export async function cancelPage(env: Env, cancellationId: string, now = Date.now()): Promise<void> {
  const row = await findCancellation(env.DB, cancellationId);
  if (!row || row.done_at !== null) return;
  const runIds = await runsToCancel(env, row, PAGE_SIZE);
  const reason = { type: "bulk" as const, cancellation_id: row.id };
  const results = await Promise.all(runIds.map((runId) => runObject(env, runId).cancelIf(reason, row.expression ?? undefined)));
  const done = runIds.length < PAGE_SIZE;
  await env.DB.batch([advanceCancellationStatement(env.DB, row.id, runIds.at(-1) ?? row.cursor, results.filter(Boolean).length, now, done)]);
  if (!done) await sendMessages(env, [{ type: "cancel-page", cancellationId: row.id }]);
}

/** Queues again the next page of cancellations whose queue message was lost (the tick). */
export async function resumeStalledCancellations(env: Env, now: number): Promise<number> {
  const ids = await stalledCancellations(env.DB, now - STALLED_AFTER_MS, 100);
  if (ids.length > 0) {
    await sendMessages(env, ids.map((cancellationId) => ({ type: "cancel-page", cancellationId })));
    createLogger().info("re-queued stalled cancellations", { count: ids.length });
  }
  return ids.length;
}

export async function getCancellation(env: Env, id: string): Promise<CancellationView | null> {
  const row = await findCancellation(env.DB, id);
  return row ? toCancellationView(row) : null;
}

function toCancellationView(row: CancellationRow): CancellationView {
  return {
    id: row.id,
    function_id: row.function_id,
    started_after: new Date(row.started_after).toISOString(),
    started_before: new Date(row.started_before).toISOString(),
    if: row.expression,
    cancelled: row.cancelled,
    status: row.done_at === null ? "Running" : "Done",
  };
}
