import type { GroupTools } from "./group.ts";
import type { MiddlewareSetup } from "./middleware/stack.ts";
import type { Clock } from "./clock.ts";
import type { EventPayload, StoredEvent } from "./event.ts";
import type { InvocationStart } from "./replay.ts";
import type { StepTools } from "./step.ts";
import type { StepRequest } from "./wait.ts";
import { serializeError, type Logger, type SerializedError } from "./types.ts";
import { serializeOutput } from "./output.ts";

// What a run is made of, as the driver and its hosts (the RunObject, sdk/testing.ts) share it; the
// rules every executor follows with it (a step's failure and retry, limits) are in runRules.ts.

/** `fetch`: a durable HTTP request (step.fetch), its output the response. `publish`: a message for the run's live stream (step.publish), stored as a completed step whose output is `{ topic, data }`. */
export type StepKind = "run" | "sleep" | "sendEvent" | "waitForEvent" | "invoke" | "publish" | "fetch";

/**
 * A step as the run stores it. `completed` and `failed` are final; `sleeping` waits for `wakeAt`;
 * `retrying` failed `attempts` times and runs again at `wakeAt`; `waiting` (a wait or a child run)
 * waits for what its `request` names until `wakeAt`, its timeout. A waiting step that was
 * resolved is `completed` or `failed` with no `seq` and `wakeAt` = when it was resolved: a replay
 * settles it, as a sleep, at the first invocation that began after that.
 */
export interface StepRecord {
  /** SHA-1 of `name`: the storage key. */
  id: string;
  /** The step id as the handler wrote it, with `:n` for repeats. */
  name: string;
  kind: StepKind;
  status: "completed" | "failed" | "sleeping" | "retrying" | "waiting";
  attempts: number;
  output?: unknown;
  error?: SerializedError;
  wakeAt?: number;
  /** Completion order (1, 2, ...) of a completed or failed step: replays settle steps in this order. */
  seq?: number;
  /** What a waiting step waits for (a wait's conditions, a child run): the host acts on it when the step is first stored. */
  request?: StepRequest;
  /** Every failed attempt, oldest first (the last one's error is also `error`), for the run's timeline. */
  failedAttempts?: FailedAttempt[];
  startedAt: number;
  endedAt?: number;
}

/** One failed attempt of a step. */
export interface FailedAttempt {
  error: SerializedError;
  startedAt: number;
  endedAt: number;
}

/** Failures of the handler's code outside steps, counted per unit: the code after the step whose seq is `unitSeq`. */
export interface HandlerFailures {
  count: number;
  unitSeq: number;
}

/** What the driver needs from the place a run lives (a RunObject, or a test). */
export interface RunHost {
  /** Steps stored by earlier invocations, by hashed id. */
  steps: ReadonlyMap<string, StepRecord>;
  /**
   * Persists a step, with the events it sends (step.sendEvent) in the same commit; it must be
   * durable before the handler sees the result.
   */
  saveStep(step: StepRecord, events?: StoredEvent[]): void | Promise<void>;
  /** Validates events a step sends, giving one without an id the id `idAt(position)`; throws for bad ones. */
  prepareEvents(events: EventPayload[], idAt: (position: number) => string): StoredEvent[];
  /**
   * Resolves once this invocation's start is durable; no step body runs before. (A body that
   * kills the isolate must find the invocation recorded, or the next wake would run it again
   * without counting the death.) The replay of stored steps goes on meanwhile.
   */
  ready?: Promise<void>;
  /** True once the run was cancelled: no new step starts, results in flight are discarded. */
  isCancelled(): boolean;
  clock: Clock;
  /** The most one step output may be, in UTF-8 bytes of its JSON (MAX_STEP_OUTPUT_BYTES, 4 MiB, if absent). */
  maxStepOutputBytes?: number;
}

/** The context a handler receives. */
// `any` by default, as in Inngest: untyped event data is read freely by handlers.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface HandlerContext<TData extends object = Record<string, any>> {
  event: StoredEvent<TData>;
  events: StoredEvent<TData>[];
  step: StepTools;
  /** Inngest v4's group tools: `group.parallel`, `group.experiment`. */
  group: GroupTools;
  runId: string;
  /**
   * 0-based attempt of the unit the reading code belongs to, as Inngest counts it: inside a step
   * body, that step's attempt; outside, the attempt of the step this invocation retries, or of
   * the handler's code since the last step.
   */
  attempt: number;
  logger: Logger;
}

/** A handler; `TExtra` is what middleware adds to its context (dependencyInjectionMiddleware). */
export type Handler<TData extends object, TOutput, TExtra extends object = {}> = (ctx: HandlerContext<TData> & TExtra) => TOutput | Promise<TOutput>;

export interface RunInput {
  runId: string;
  events: StoredEvent[];
  /** Failures of the handler outside steps so far (see HandlerFailures). */
  handlerFailures: HandlerFailures;
  retries: number;
  /** How long a step body, or the handler's code between steps, may run before it fails. */
  stepTimeoutMs: number;
  logger: Logger;
  /** Every invocation's start, this one's last (a recovering invocation goes on from the dead one's). */
  starts: readonly InvocationStart[];
  /**
   * The invocation before this one died with the runtime: the steps it had running are the
   * steps this replay reaches without a stored result, and each counts as a failed attempt
   * instead of running again (so a step that kills the isolate cannot loop forever).
   */
  recovering: boolean;
  /** The function's middleware (the client's, then its own), if it has any. */
  middleware?: MiddlewareSetup;
}

/** How one invocation of a handler ended. */
export type RunOutcome =
  | { type: "completed"; output: unknown }
  | { type: "failed"; error: SerializedError }
  | { type: "suspended"; wakeAt: number }
  | { type: "retry"; error: SerializedError; wakeAt: number; handlerFailures: HandlerFailures }
  | { type: "cancelled" };

/**
 * A run's end with `output`, held to the same limits as a step's output; a breach fails the run
 * for good. The driver and the remote executor both end a run through it.
 */
export function completedOutcome(output: unknown): RunOutcome {
  try {
    return { type: "completed", output: serializeOutput("handler output", output, 0).value };
  } catch (err) {
    return { type: "failed", error: serializeError(err) };
  }
}
