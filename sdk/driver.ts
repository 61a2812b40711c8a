import { toEpochMs, toMilliseconds } from "./duration.ts";
import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { RetryAfterError } from "./errors/RetryAfterError.ts";
import { StepError } from "./errors/StepError.ts";
import { StepTimeoutError } from "./errors/StepTimeoutError.ts";
import type { EventPayload, StoredEvent } from "./event.ts";
import { serializeOutput, utf8Bytes, type Serialized } from "./output.ts";
import { backoffDelay } from "./retry.ts";
import { hashStepId, MAX_STEPS_PER_RUN, StepIdAllocator, type StepTools } from "./step.ts";
import { serializeError, type Logger, type SerializedError } from "./types.ts";

export type StepKind = "run" | "sleep" | "sendEvent";

/**
 * A step as the run stores it. `completed` and `failed` are final; `sleeping` waits for `wakeAt`;
 * `retrying` failed `attempts` times and runs again at `wakeAt`.
 */
export interface StepRecord {
  /** SHA-1 of `name`: the storage key. */
  id: string;
  /** The step id as the handler wrote it, with `:n` for repeats. */
  name: string;
  kind: StepKind;
  status: "completed" | "failed" | "sleeping" | "retrying";
  attempts: number;
  output?: unknown;
  error?: SerializedError;
  wakeAt?: number;
  startedAt: number;
  endedAt?: number;
}

/** What the driver needs from the place a run lives (a RunObject, or a test). */
export interface RunHost {
  /** Steps stored by earlier invocations, by hashed id. */
  steps: ReadonlyMap<string, StepRecord>;
  /** Persists a step; it must be durable before the handler sees the result. */
  saveStep(step: StepRecord): void | Promise<void>;
  /** Sends events through the ingest path and returns their ids. */
  sendEvents(events: EventPayload[]): Promise<{ ids: string[] }>;
  /** True once the run was cancelled: no new step starts, results in flight are discarded. */
  isCancelled(): boolean;
  now(): number;
}

/** The context a handler receives. */
// `any` by default, as in Inngest: untyped event data is read freely by handlers.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface HandlerContext<TData extends object = Record<string, any>> {
  event: StoredEvent<TData>;
  events: StoredEvent<TData>[];
  step: StepTools;
  runId: string;
  /**
   * 0-based attempt: of the step being executed (read inside a step body), of the step this
   * invocation retries (read at the top, e.g. destructured), or of the handler outside steps.
   */
  attempt: number;
  logger: Logger;
}

export type Handler<TData extends object, TOutput> = (ctx: HandlerContext<TData>) => TOutput | Promise<TOutput>;

export interface RunInput {
  runId: string;
  events: StoredEvent[];
  /** Failed attempts of the handler outside steps so far. */
  handlerAttempt: number;
  retries: number;
  /** How long a step body, or the handler's code between steps, may run before it fails. */
  stepTimeoutMs: number;
  logger: Logger;
}

/** How one invocation of a handler ended. */
export type RunOutcome =
  | { type: "completed"; output: unknown }
  | { type: "failed"; error: SerializedError }
  | { type: "suspended"; wakeAt: number }
  | { type: "retry"; error: SerializedError; wakeAt: number }
  | { type: "cancelled" };

/**
 * Runs a handler once against the stored steps of its run. Memoized steps return their stored
 * result; new steps run, are saved, and the handler goes on in the same invocation. It returns
 * when the handler ends, or when every path is suspended (sleeps, step retries).
 *
 * @example
 * const outcome = await executeRun(fn.handler, { runId, events, handlerAttempt: 0, retries: 4, logger }, host);
 */
export async function executeRun<TData extends object>(
  handler: Handler<TData, unknown>,
  input: RunInput,
  host: RunHost,
): Promise<RunOutcome> {
  const run = new Invocation(input, host);
  return run.execute(handler as Handler<object, unknown>);
}

class Invocation {
  private readonly ids = new StepIdAllocator();
  private stepCount = 0;
  private readonly wakeTimes: number[] = [];
  private inFlight = 0;
  private currentAttempt: number;
  private storedBytes = 0;
  private resolveOutcome!: (outcome: RunOutcome) => void;
  private readonly outcome = new Promise<RunOutcome>((resolve) => (this.resolveOutcome = resolve));
  /** Fires when the handler runs outside steps for longer than the step timeout. */
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private isSettled = false;

  constructor(
    private readonly input: RunInput,
    private readonly host: RunHost,
  ) {
    // A handler that destructures `attempt` reads it once: make that the attempt of the step this
    // invocation woke up to retry, as Inngest's per-step requests would show it.
    const now = host.now();
    let retried = -1;
    for (const step of host.steps.values()) {
      this.storedBytes += step.output === undefined ? 0 : utf8Bytes(JSON.stringify(step.output));
      if (step.status === "retrying" && (step.wakeAt ?? 0) <= now) retried = Math.max(retried, step.attempts);
    }
    this.currentAttempt = retried >= 0 ? retried : input.handlerAttempt;
  }

  async execute(handler: Handler<object, unknown>): Promise<RunOutcome> {
    const invocation = this;
    const ctx: HandlerContext<object> = {
      event: this.input.events[0] as StoredEvent<object>,
      events: this.input.events as StoredEvent<object>[],
      step: this.stepTools(),
      runId: this.input.runId,
      get attempt() {
        return invocation.currentAttempt;
      },
      logger: this.input.logger,
    };
    this.watchOutsideSteps();
    Promise.resolve()
      .then(() => handler(ctx))
      .then(
        (output) => this.settle(this.handlerResult(output)),
        (err: unknown) => this.settle(this.handlerFailure(err)),
      );
    return this.outcome;
  }

  /** The run's output, held to the same limits as a step's; a breach fails the run for good. */
  private handlerResult(output: unknown): RunOutcome {
    try {
      return { type: "completed", output: serializeOutput("handler output", output, 0).value };
    } catch (err) {
      return { type: "failed", error: serializeError(err) };
    }
  }

  private handlerFailure(err: unknown): RunOutcome {
    const error = serializeError(err);
    const isFinal = err instanceof NonRetriableError || err instanceof StepError;
    if (isFinal || this.input.handlerAttempt >= this.input.retries) return { type: "failed", error };
    return { type: "retry", error, wakeAt: this.retryAt(err, this.input.handlerAttempt + 1) };
  }

  private retryAt(err: unknown, failedAttempts: number): number {
    const now = this.host.now();
    return err instanceof RetryAfterError ? err.retryAt(now) : now + backoffDelay(failedAttempts);
  }

  private stepTools(): StepTools {
    return {
      run: (id, fn) => this.step(id, (name, hashed) => this.runStep(name, hashed, fn)),
      sleep: (id, duration) =>
        this.step(id, (name, hashed) => this.sleepStep(name, hashed, () => this.host.now() + nonRetriable(() => toMilliseconds(duration)))),
      sleepUntil: (id, time) => this.step(id, (name, hashed) => this.sleepStep(name, hashed, () => nonRetriable(() => toEpochMs(time)))),
      sendEvent: (id, events) =>
        this.step(id, (name, hashed) =>
          this.runStep(name, hashed, () => this.host.sendEvents(Array.isArray(events) ? events : [events]), "sendEvent"),
        ),
    } as StepTools;
  }

  /**
   * Gives a step call its id synchronously (call order decides repeats), then runs `body` while
   * counting it as in flight, so the run never suspends while a step is still being saved.
   * A body that returns SUSPENDED parks its path of the handler: the promise never settles here.
   */
  private step<T>(id: string, body: (name: string, hashed: string) => Promise<T | typeof SUSPENDED>): Promise<T> {
    if (this.stepCount >= MAX_STEPS_PER_RUN) {
      return Promise.reject(
        new NonRetriableError(`run has more than ${MAX_STEPS_PER_RUN} steps (at step "${id}"); the limit is ${MAX_STEPS_PER_RUN} steps per run`),
      );
    }
    // Handler code still running after this invocation ended (a branch that awaited something
    // other than a step) must not start steps: the next invocation owns the run now.
    if (this.isSettled) return new Promise<T>(() => {});
    this.stepCount++;
    const name = this.ids.next(id);
    this.inFlight++;
    clearTimeout(this.idleTimer);
    const result = body(name, hashStepId(name));
    const settled = () => {
      this.inFlight--;
      this.suspendIfIdle();
      this.watchOutsideSteps();
    };
    return result.then(
      (value) => {
        settled();
        return value === SUSPENDED ? new Promise<T>(() => {}) : (value as T);
      },
      (err: unknown) => {
        settled();
        throw err;
      },
    );
  }

  private async runStep<T>(
    name: string,
    id: string,
    fn: () => T | Promise<T>,
    kind: StepKind = "run",
  ): Promise<Awaited<T> | typeof SUSPENDED> {
    const stored = this.host.steps.get(id);
    // A copy: the handler may change what it gets without touching the stored result.
    if (stored?.status === "completed") return structuredClone(stored.output) as Awaited<T>;
    if (stored?.status === "failed") throw new StepError(name, stored.error ?? { name: "Error", message: "unknown error" });
    if (stored?.status === "retrying" && stored.wakeAt !== undefined && stored.wakeAt > this.host.now()) {
      return this.suspend(stored.wakeAt);
    }
    if (this.host.isCancelled()) return this.cancel();

    const attempts = stored?.attempts ?? 0;
    const startedAt = this.host.now();
    this.currentAttempt = attempts;
    let output: Serialized;
    try {
      output = serializeOutput(`step "${name}" output`, await this.withStepTimeout(name, fn), this.storedBytes);
    } catch (err) {
      if (this.host.isCancelled()) return this.cancel();
      const error = serializeError(err);
      const failed = attempts + 1;
      const isFinal = err instanceof NonRetriableError || failed > this.input.retries;
      const base = { id, name, kind, attempts: failed, error, startedAt, endedAt: this.host.now() };
      if (isFinal) {
        await this.host.saveStep({ ...base, status: "failed" });
        throw new StepError(name, error);
      }
      const wakeAt = this.retryAt(err, failed);
      await this.host.saveStep({ ...base, status: "retrying", wakeAt });
      this.input.logger.warn(`step "${name}" failed; retrying`, { attempt: attempts, error: error.message });
      return this.suspend(wakeAt);
    }
    if (this.host.isCancelled()) return this.cancel();
    this.storedBytes += output.bytes;
    await this.host.saveStep({ id, name, kind, status: "completed", attempts: attempts + 1, output: output.value, startedAt, endedAt: this.host.now() });
    this.currentAttempt = this.input.handlerAttempt;
    // Let ingest and other runs on this thread in between steps (DESIGN "Performance notes").
    await yieldToEventLoop();
    return structuredClone(output.value) as Awaited<T>;
  }

  private async sleepStep(name: string, id: string, wakeTime: () => number): Promise<void | typeof SUSPENDED> {
    const stored = this.host.steps.get(id);
    if (stored?.status === "completed") return;
    if (this.host.isCancelled()) return this.cancel();
    const now = this.host.now();
    const wakeAt = stored?.wakeAt ?? wakeTime();
    // A stored sleep whose time has come is over: writing that down would cost the waking run a
    // commit before its next step's output leaves, and the stored wake time already says it.
    if (stored && wakeAt <= now) return;
    if (!stored && wakeAt <= now) {
      await this.host.saveStep({ id, name, kind: "sleep", status: "completed", attempts: 1, output: null, wakeAt, startedAt: now, endedAt: now });
      return;
    }
    if (!stored) await this.host.saveStep({ id, name, kind: "sleep", status: "sleeping", attempts: 0, wakeAt, startedAt: now });
    return this.suspend(wakeAt);
  }

  /** Runs a step body, failing it (retriably) if it has not finished within the step timeout. */
  private withStepTimeout<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StepTimeoutError(`step "${name}" did not finish within ${this.input.stepTimeoutMs} ms, the function's stepTimeout`)),
        this.input.stepTimeoutMs,
      );
    });
    return Promise.race([Promise.resolve().then(fn), timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * While no step is in flight and no path is suspended, the handler runs its own code: if that
   * lasts longer than the step timeout (a promise that never settles, say), the handler fails
   * and is retried like any error outside steps, instead of holding the run forever.
   */
  private watchOutsideSteps(): void {
    clearTimeout(this.idleTimer);
    if (this.isSettled || this.inFlight > 0 || this.wakeTimes.length > 0) return;
    this.idleTimer = setTimeout(() => {
      const error = new StepTimeoutError(`the handler ran outside any step for ${this.input.stepTimeoutMs} ms without finishing (the function's stepTimeout)`);
      this.settle(this.handlerFailure(error));
    }, this.input.stepTimeoutMs);
  }

  private settle(outcome: RunOutcome): void {
    this.isSettled = true;
    clearTimeout(this.idleTimer);
    this.resolveOutcome(outcome);
  }

  /** Parks this path of the handler until `wakeAt`. */
  private suspend(wakeAt: number): typeof SUSPENDED {
    this.wakeTimes.push(wakeAt);
    return SUSPENDED;
  }

  private cancel(): typeof SUSPENDED {
    this.settle({ type: "cancelled" });
    return SUSPENDED;
  }

  /**
   * Suspends the run once no step is in flight and some path waits for a time. One macrotask of
   * grace lets parallel steps started in the same tick register first.
   */
  private suspendIfIdle(): void {
    if (this.inFlight > 0 || this.wakeTimes.length === 0) return;
    setTimeout(() => {
      if (this.inFlight === 0) this.settle({ type: "suspended", wakeAt: Math.min(...this.wakeTimes) });
    }, 0);
  }
}

/** Marks a step path that waits for a later invocation. */
const SUSPENDED: unique symbol = Symbol("suspended");

/** Runs `read`; an error it throws (a duration or time that cannot be read) will not get better by retrying. */
function nonRetriable<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new NonRetriableError(serializeError(err).message);
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
