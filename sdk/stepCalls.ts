// The step tools a handler gets from the driver (sdk/driver.ts): each call takes its id in call
// order (a repeat gets `:n`), passes middleware's wrapStep, and goes to the invocation to settle.

import { AsyncLocalStorage } from "node:async_hooks";
import type { ContextScope } from "./scope.ts";
import type { Clock } from "./clock.ts";
import { toEpochMs, toMilliseconds } from "./duration.ts";
import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { isNonRetriable } from "./errors/recognize.ts";
import type { EventPayload } from "./event.ts";
import { EventType } from "./eventType.ts";
import { createStepFetch, fetchStepId, performFetch, rebuildResponse, type FetchedResponse } from "./fetch.ts";
import { variantScope } from "./group.ts";
import type { Middleware } from "./middleware/middleware.ts";
import type { MiddlewareStack } from "./middleware/stack.ts";
import { preparePublish, type PublishedMessage } from "./publish.ts";
import type { StepKind, StepRecord } from "./run.ts";
import { hashStepId, MAX_STEPS_PER_RUN, StepIdAllocator, type StepTools } from "./step.ts";
import { serializeError } from "./types.ts";
import { buildInvokeRequest, buildWaitRequest, type StepRequest } from "./wait.ts";

/** A step call of the handler, waiting to be settled. */
export interface StepCall {
  name: string;
  id: string;
  kind: StepKind;
  /** What the step does when it is new: its body, or a sleep's wake time. */
  work: StepWork;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** What middleware is told of the step, when the function has middleware. */
  info?: Middleware.StepInfo;
}

export type StepWork =
  | { type: "body"; run: () => unknown }
  | { type: "send"; events: EventPayload[] }
  | { type: "sleep"; wakeAt: () => number }
  | { type: "wait"; request: () => StepRequest }
  | { type: "publish"; message: PublishedMessage };

/** What the code running now belongs to: a step body (with its attempt) or the handler. */
export const bodyScope: ContextScope<{ attempt: number }> = new AsyncLocalStorage<{ attempt: number }>();

/** The step types middleware sees, as Inngest names them. */
const STEP_TYPES: Record<StepKind, Middleware.StepType> = {
  run: "run",
  sleep: "sleep",
  sendEvent: "sendEvent",
  waitForEvent: "waitForEvent",
  invoke: "invoke",
  publish: "realtime.publish",
  fetch: "fetch",
};

/** What the step tools need of the invocation they belong to. */
export interface StepCallTarget {
  clock: Clock;
  middleware: MiddlewareStack | undefined;
  /** The stored step of a hashed id. */
  stored(id: string): StepRecord | undefined;
  /** True once the handler has ended or the invocation settled. */
  isOver(): boolean;
  /** True for a stored step that this invocation's replay settles. */
  settlesOnReplay(stored: StepRecord): boolean;
  /** Settles the call in its turn: from its stored result, or as a new step. */
  request(call: StepCall): void;
}

/** The step calls of one invocation: their ids, the run's step limit, and middleware's view of each. */
export class StepCalls {
  private readonly ids = new StepIdAllocator();
  private count = 0;

  constructor(private readonly target: StepCallTarget) {}

  /** The handler's `step`. */
  tools(): StepTools {
    const clock = this.target.clock;
    const call = (id: string, kind: StepKind, work: StepWork) => this.call(id, kind, work);
    return {
      run: (id, fn) => call(id, "run", { type: "body", run: fn }),
      sleep: (id, duration) => call(id, "sleep", { type: "sleep", wakeAt: () => clock.now() + nonRetriable(() => toMilliseconds(duration)) }),
      sleepUntil: (id, time) => call(id, "sleep", { type: "sleep", wakeAt: () => nonRetriable(() => toEpochMs(time)) }),
      sendEvent: (id, events) => call(id, "sendEvent", { type: "send", events: Array.isArray(events) ? events : [events] }),
      waitForEvent: (id: string, options: unknown) =>
        call(id, "waitForEvent", { type: "wait", request: () => nonRetriable(() => buildWaitRequest(eventTypeToName(options), clock.now())) }),
      invoke: (id: string, options: unknown) => call(id, "invoke", { type: "wait", request: () => nonRetriable(() => buildInvokeRequest(options, clock.now())) }),
      fetch: createStepFetch(
        () => (bodyScope.getStore() ? "inside-step" : "durable"),
        (input, init) => this.durableFetch(input, init),
      ),
      publish: (topic, data) => {
        // A body may run again (a retry): its messages would be sent twice, and its ids taken in another order.
        if (bodyScope.getStore()) {
          return Promise.reject(new NonRetriableError(`step.publish("${String(topic)}") was called inside a step body; publish between steps instead`));
        }
        let message: PublishedMessage;
        try {
          // Checked and copied now: the handler may change `data` before the message is stored.
          message = preparePublish(topic, data);
        } catch (err) {
          return Promise.reject(err);
        }
        return call(message.topic, "publish", { type: "publish", message });
      },
    } as StepTools;
  }

  /** Gives a step call its id synchronously (call order decides repeats) and settles it in turn. */
  call<T>(id: string, kind: StepKind, work: StepWork, stepType?: Middleware.StepType): Promise<T> {
    if (this.count >= MAX_STEPS_PER_RUN) {
      return Promise.reject(
        new NonRetriableError(`run has more than ${MAX_STEPS_PER_RUN} steps (at step "${id}"); the limit is ${MAX_STEPS_PER_RUN} steps per run`),
      );
    }
    // Handler code still running after the handler ended (a branch left behind by a rejected
    // Promise.all) starts no step: the next invocation owns the run's future.
    if (this.target.isOver()) return new Promise<T>(() => {});
    const variant = variantScope.getStore();
    if (variant) variant.calledStep = true;
    this.count++;
    const name = this.ids.next(id);
    const hashed = hashStepId(name);
    let pending!: StepCall;
    const result = new Promise<T>((resolve, reject) => {
      pending = { name, id: hashed, kind, work, resolve: resolve as (value: unknown) => void, reject };
    });
    const middleware = this.target.middleware;
    if (!middleware) {
      this.target.request(pending);
      return result;
    }
    const stored = this.target.stored(hashed);
    pending.info = { hashedId: hashed, memoized: stored !== undefined && this.target.settlesOnReplay(stored), options: { id }, stepType: stepType ?? STEP_TYPES[kind] };
    // The step is requested when the innermost wrapStep calls next(), once however often it is called.
    let requested = false;
    return middleware.wrapStep(pending.info, () => {
      if (!requested) {
        requested = true;
        this.target.request(pending);
      }
      return result;
    }) as Promise<T>;
  }

  /** step.fetch in the handler's own code: a step whose memoized response is rebuilt for each replay. */
  private durableFetch(input: RequestInfo | URL, init: RequestInit | undefined): Promise<Response> {
    let id: string;
    try {
      id = fetchStepId(input);
    } catch (err) {
      return Promise.reject(new NonRetriableError(`step.fetch: ${serializeError(err).message}; give it an absolute URL`));
    }
    return this.call<FetchedResponse>(id, "fetch", { type: "body", run: () => performFetch(input, init) }).then(rebuildResponse);
  }
}

/** Inngest v4 waits for an `eventType` as it does for its name. */
function eventTypeToName(options: unknown): unknown {
  const event = (options as { event?: unknown } | null)?.event;
  return event instanceof EventType ? { ...(options as object), event: event.name } : options;
}

/** Runs `read`; an error it throws (a duration or time that cannot be read) will not get better by retrying. */
export function nonRetriable<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw isNonRetriable(err) ? err : new NonRetriableError(serializeError(err).message);
  }
}
