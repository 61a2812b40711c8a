import { sha1 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { DurationLike } from "./duration.ts";
import { engineEventId, type EventPayload, type StoredEvent } from "./event.ts";
import type { FunctionReference } from "./reference.ts";
import type { StepFetch } from "./fetch.ts";

/** The step tools a handler receives as `step`. Every step id must be unique in a run; repeats get `:1`, `:2`. */
export interface StepTools {
  /**
   * Runs `fn` once and memoizes its JSON result; later replays return the stored result.
   * Retried on its own (the function's `retries`); after the last attempt, throws a `StepError`.
   *
   * @example
   * const user = await step.run("load-user", () => db.users.find(event.data.userId));
   */
  run<T>(id: string, fn: () => T | Promise<T>): Promise<Awaited<T>>;
  /**
   * Suspends the run for `duration` (ms, or text such as `"30s"`, `"1h30m"`, `"2 days"`).
   *
   * @example
   * await step.sleep("wait-a-day", "1 day");
   */
  sleep(id: string, duration: DurationLike): Promise<void>;
  /**
   * Suspends the run until `time` (a `Date`, an ISO 8601 string or epoch ms).
   *
   * @example
   * await step.sleepUntil("until-launch", "2026-12-01T09:00:00Z");
   */
  sleepUntil(id: string, time: Date | string | number): Promise<void>;
  /**
   * Sends events through the event API's path, once, and returns their ids (`{ ids: [] }` for none).
   * An event without an `id` gets one derived from the run, this step and its position, so a send
   * repeated after a crash is a duplicate that starts nothing twice. Names starting with `inngest/`
   * are refused.
   *
   * @example
   * const { ids } = await step.sendEvent("notify", { name: "shop/order.paid", data: { orderId } });
   */
  sendEvent(id: string, events: EventPayload | EventPayload[]): Promise<{ ids: string[] }>;
  /**
   * Suspends the run until an event arrives, and returns it, or `null` at `timeout`. Only events
   * received after the wait began count, or up to `lookback` before it. `match: "data.userId"`
   * means the run's trigger event and the new one agree on that field; `if` is CEL over `event`
   * (the trigger) and `async` (the new event). With `events` and `mode: "any"` it returns the first
   * of several; with `mode: "all"` one event per entry of `events`, in their order, once all came.
   *
   * @example
   * const activated = await step.waitForEvent("wait-activation", { event: "app/user.activated", match: "data.userId", timeout: "3d" });
   */
  waitForEvent(id: string, options: { event: string | { name: string }; timeout: DurationLike; match?: string; if?: string; lookback?: DurationLike }): Promise<StoredEvent | null>;
  waitForEvent(id: string, options: WaitForEventsOptions & { mode: "any" }): Promise<StoredEvent | null>;
  waitForEvent(id: string, options: WaitForEventsOptions & { mode: "all" }): Promise<StoredEvent[] | null>;
  /**
   * Starts `function` with `data` as a run of its own (no event matching), suspends until it ends,
   * and returns its output; a child that fails (or does not end within `timeout`) throws a
   * `StepError` here. Retried or replayed, the step starts no second child.
   *
   * @example
   * const receipt = await step.invoke("charge", { function: chargeCard, data: { orderId } });
   */
  // `data` may be left out when the reference's data has no required field (Inngest's own suite invokes so).
  invoke<TData extends Record<string, unknown>, TOutput>(
    id: string,
    options: { function: FunctionReference<TData, TOutput>; timeout?: DurationLike } & ({} extends TData ? { data?: TData } : { data: TData }),
  ): Promise<TOutput>;
  // A reference goes by the overload above, so its schemas type the call.
  invoke<TOutput = unknown>(id: string, options: { function: { id: string; "~types"?: never } | string; data?: Record<string, unknown>; timeout?: DurationLike }): Promise<TOutput>;
  /**
   * Publishes `data` (JSON, at most 64 KiB) under `topic` to the run's live stream
   * (`GET /v1/runs/:runId/stream`, an `event: publish`), once: the message is stored in the run,
   * so a replay sends it no second time and a subscriber that joins later finds it in the
   * history. The topic is the step's id (repeats get `:1`, `:2`). Call it between steps, not
   * inside a step body, which may run more than once.
   *
   * @example
   * await step.publish("progress", { done: 3, of: 10 });
   */
  publish(topic: string, data: unknown): Promise<void>;
  /**
   * A durable `fetch` (Inngest's `step.fetch`): called in the handler's own code, the request is a
   * step (id `step.fetch: <host>`) whose response (status, headers, body text) is memoized, so a
   * replay gets a rebuilt Response and sends no second request. Inside a step body it is the plain
   * fallback (`config({ fallback })`, the global `fetch` by default).
   *
   * @example
   * const res = await step.fetch("https://api.example.com/rates");
   * const rates = await res.json();
   */
  fetch: StepFetch;
}

/** `waitForEvent` over several events: each a name, or a name with its own `match` / `if`. */
export interface WaitForEventsOptions {
  events: (string | { event: string; match?: string; if?: string })[];
  mode: "any" | "all";
  timeout: DurationLike;
  match?: string;
  if?: string;
  lookback?: DurationLike;
}

/** The largest number of steps one run may have (DESIGN "Limits"). */
export const MAX_STEPS_PER_RUN = 1000;

/**
 * Gives each step call its unique id, in call order: the user's id, then `id:1`, `id:2`, ... for repeats.
 *
 * @example
 * const ids = new StepIdAllocator(); ids.next("a"); ids.next("a"); // "a", "a:1"
 */
export class StepIdAllocator {
  private readonly repeats = new Map<string, number>();
  private readonly taken = new Set<string>();

  next(id: string): string {
    let unique = id;
    // Skip suffixes a user id already took ("x", "x:1", then "x" again becomes "x:2").
    for (let n = this.repeats.get(id) ?? 0; this.taken.has(unique); n++) {
      unique = `${id}:${n + 1}`;
      this.repeats.set(id, n + 1);
    }
    this.taken.add(unique);
    return unique;
  }
}

/**
 * Hashes a step id for storage (SHA-1 hex, as Inngest does), so any id text is a safe key.
 * Synchronous on purpose: an async digest per step is a hop through the runtime on every step.
 */
export function hashStepId(id: string): string {
  return bytesToHex(sha1(utf8.encode(id)));
}

/**
 * The id of the event at `position` that step `stepName` of run `runId` sends, when the sender gave
 * none: the same every time the step runs, so a send repeated after a crash is a duplicate that
 * the event log's 24 h dedupe drops, and starts nothing twice downstream. It is in the engine's id
 * space (`stepflare:`), which senders may not use, so no one can send it first and drop the step's event.
 *
 * @example
 * sendEventId("9f…", "notify", 0); // "stepflare:step-" and 32 hex characters
 */
export function sendEventId(runId: string, stepName: string, position: number): string {
  return engineEventId("step", bytesToHex(sha256(utf8.encode(`${runId}\n${stepName}\n${position}`)).slice(0, 16)));
}

const utf8 = new TextEncoder();
