import { MISSING_KEY } from "../../sdk/flow.ts";
import type { StepflareFunction } from "../../sdk/function.ts";
import type { Env } from "../platform/env.ts";
import type { AcceptedEvent } from "../platform/types.ts";
import type { FlowAsk, FlowAnswer } from "./FlowObject.ts";
import { recordPausedEvent } from "../db/pauses.ts";
import { admitByBudget } from "./budgetAdmission.ts";

// Flow control at dispatch (DESIGN "Flow control"): a function that asks for it gets its run's
// start decided by one coordinator object per (function, option, key value); others pay nothing.

/** The coordinator of `option` for `key` of function `functionId`. */
export function flowObject(env: Env, functionId: string, option: string, key: string) {
  return env.FLOWS.get(env.FLOWS.idFromName(JSON.stringify([functionId, option, key])));
}

/**
 * How a run of `fn` for `accepted` starts under its flow control: `{ startAt }` (now, or an
 * event's future `ts`), `skipped` (a rate limit: recorded in the runs index as Skipped), `none` (an
 * idempotency key already used, or an event handed to a debounce or batch, whose coordinator
 * starts the run later). `position` is the event's place in its queue batch: events accepted in
 * the same millisecond are collected in the order they were sent.
 */
export async function admitRun(env: Env, fn: StepflareFunction, accepted: AcceptedEvent, runId: string, position: number): Promise<{ startAt: number } | { skipped: string } | "none"> {
  const { event, receivedAt } = accepted;
  const flow = fn.flow;
  // A spent budget pauses the function: this event is held for the resume, as a paused function's are.
  const heldByBudget = async () => {
    if (!flow.budget || (await admitByBudget(env, fn, runId))) return false;
    await recordPausedEvent(env, [fn.id], accepted, position);
    return true;
  };
  // A debounce's or batch's events count against a budget as they come (their run starts later).
  if ((flow.debounce || flow.batchEvents) && (await heldByBudget())) return "none";
  if (flow.debounce) {
    const { period, timeout, keyOf, events } = flow.debounce;
    await flowObject(env, fn.id, "debounce", keyOf(event)).collect({ kind: "debounce", functionId: fn.id, accepted, position, period, ...(timeout !== undefined ? { timeout } : {}), keepAll: events === "all" });
    return "none";
  }
  if (flow.batchEvents) {
    const { maxSize, timeout, keyOf } = flow.batchEvents;
    await flowObject(env, fn.id, "batchEvents", keyOf(event)).collect({ kind: "batchEvents", functionId: fn.id, accepted, position, maxSize, timeout });
    return "none";
  }
  const startAt = Math.max(event.ts, receivedAt);
  const ask = (option: string, key: string, question: FlowAsk): Promise<FlowAnswer> => flowObject(env, fn.id, option, key).admit(question);
  // An event that lacks the idempotency key is not deduplicated: it has no key to be a duplicate by.
  const idempotencyKey = flow.idempotency?.keyOf(event);
  if (idempotencyKey !== undefined && idempotencyKey !== MISSING_KEY && !(await ask("idempotency", idempotencyKey, { kind: "idempotency", runId })).start) return "none";
  if (flow.rateLimit) {
    const { limit, period, keyOf } = flow.rateLimit;
    const answer = await ask("rateLimit", keyOf(event), { kind: "rateLimit", runId, limit, period });
    if (!answer.start) return { skipped: answer.reason };
  }
  if (flow.singleton) {
    const answer = await ask("singleton", flow.singleton.keyOf(event), { kind: "singleton", runId, mode: flow.singleton.mode });
    if (!answer.start) return { skipped: answer.reason };
  }
  if (await heldByBudget()) return "none";
  // A throttle (like a concurrency limit) is asked by the run itself, at its first invocation: so
  // that runs waiting for their start can be reordered by priority.
  return { startAt };
}
