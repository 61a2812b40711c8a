import { createGroupTools, variantScope } from "./group.ts";
import { EventType } from "./eventType.ts";
import type { Middleware } from "./middleware/middleware.ts";
import { MiddlewareStack } from "./middleware/stack.ts";
import { createStepFetch, fetchStepId, performFetch, rebuildResponse, runScope, type FetchedResponse, type FetchScope } from "./fetch.ts";
import { isNonRetriable, isStepError, retryAfterOf } from "./errors/recognize.ts";
import { AsyncLocalStorage } from "node:async_hooks";
import type { Clock } from "./clock.ts";
import { toEpochMs, toMilliseconds } from "./duration.ts";
import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { StepError } from "./errors/StepError.ts";
import { StepTimeoutError } from "./errors/StepTimeoutError.ts";
import type { EventPayload, StoredEvent } from "./event.ts";
import { checkRunState } from "./output.ts";
import { preparePublish, publishedBytes, type PublishedMessage } from "./publish.ts";
import { highestSeq, replayOrder, settlesByTime } from "./replay.ts";
import { hashStepId, MAX_STEPS_PER_RUN, sendEventId, StepIdAllocator, type StepTools } from "./step.ts";
import { serializeError, type Logger } from "./types.ts";
import { buildInvokeRequest, buildWaitRequest, type StepRequest } from "./wait.ts";
import { completedStep, failedStep, handlerFailure, invocationStart, isFinalFailure, isRetryAhead, isRetryDue, logStepRetry, memoizedResult, sleepStep, storedBytesOf, unitFailures, waitingStep } from "./runRules.ts";
import { completedOutcome, type Handler, type HandlerContext, type RunHost, type RunInput, type RunOutcome, type StepKind, type StepRecord } from "./run.ts";

export type { FailedAttempt, Handler, HandlerContext, HandlerFailures, RunHost, RunInput, RunOutcome, StepKind, StepRecord } from "./run.ts";

/**
 * Runs a handler once against the stored steps of its run. Stored steps settle in the order they
 * first settled; new steps run, are saved, and the handler goes on in the same invocation. It
 * returns once the handler has ended, or every path of it waits for a time (sleeps, retries), and
 * no step body is still running. It rejects only if the host fails to store a step.
 *
 * @example
 * const outcome = await executeRun(fn.handler, input, host);
 */
export async function executeRun<TData extends object>(handler: Handler<TData, unknown>, input: RunInput, host: RunHost): Promise<RunOutcome> {
  return new Invocation(input, host).execute(handler as Handler<object, unknown>);
}

/** A step call of the handler, waiting to be settled. */
interface StepCall {
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

type StepWork =
  | { type: "body"; run: () => unknown }
  | { type: "send"; events: EventPayload[] }
  | { type: "sleep"; wakeAt: () => number }
  | { type: "wait"; request: () => StepRequest }
  | { type: "publish"; message: PublishedMessage };

/** What the code running now belongs to: a step body (with its attempt) or the handler. */
const bodyScope = new AsyncLocalStorage<{ attempt: number }>();

class Invocation {
  private readonly ids = new StepIdAllocator();
  private readonly clock: Clock;
  /** When this invocation began: what decides whether a stored sleep or retry is due. */
  private readonly startedAt: number;
  /** Stored steps to settle, first settled first, and how far the replay got. */
  private readonly replay: string[];
  private replayed = 0;
  private readonly requested = new Map<string, () => void>();
  /** New results, stored, waiting to reach the handler after the replay (by seq). */
  private readonly held: { seq: number; deliver: () => void }[] = [];
  /** Steps reached without a result while recovering: what the dead invocation had running. */
  private frontier: StepCall[] = [];
  private recovering: boolean;
  private seq: number;
  /** The seq of the last new result the handler got: results reach it in seq order. */
  private delivered: number;
  private readonly initialSeq: number;
  private readonly initialAttempt: number;
  private storedBytes = 0;
  private stepCount = 0;
  private inFlight = 0;
  private readonly wakeTimes: number[] = [];
  private handlerEnd: { ok: true; value: unknown } | { ok: false; error: unknown } | undefined;
  private settled = false;
  private resolveOutcome!: (outcome: RunOutcome) => void;
  private rejectOutcome!: (err: unknown) => void;
  private readonly outcome = new Promise<RunOutcome>((resolve, reject) => {
    this.resolveOutcome = resolve;
    this.rejectOutcome = reject;
  });
  /** Counts everything that happens, so a check can tell whether the handler is still moving. */
  private activity = 0;
  private checkedActivity = -1;
  private checkScheduled = false;
  private idleTimer: unknown;
  private readonly middleware?: MiddlewareStack;
  /** The handler has been called (after middleware transformed its input). */
  private handlerStarted = false;
  private memoizationEnded = false;

  constructor(
    private readonly input: RunInput,
    private readonly host: RunHost,
  ) {
    this.clock = host.clock;
    this.startedAt = invocationStart(input, host.clock);
    this.replay = replayOrder(host.steps.values(), input.starts);
    this.seq = this.initialSeq = this.delivered = highestSeq(host.steps.values());
    this.recovering = input.recovering;
    this.storedBytes = storedBytesOf(host.steps.values());
    let retried = -1;
    for (const step of host.steps.values()) if (isRetryDue(step, this.startedAt)) retried = Math.max(retried, step.attempts);
    // A handler that destructures `attempt` reads it once: make that the attempt of the step this
    // invocation woke up to retry, as Inngest's per-step requests would show it.
    this.initialAttempt = retried >= 0 ? retried : this.unitFailures();
    if (input.middleware?.classes.length) this.middleware = new MiddlewareStack(input.middleware, input.logger);
  }

  execute(handler: Handler<object, unknown>): Promise<RunOutcome> {
    const invocation = this;
    const ctx: HandlerContext<object> = {
      event: this.input.events[0] as StoredEvent<object>,
      events: this.input.events as StoredEvent<object>[],
      step: this.stepTools(),
      group: createGroupTools({ runId: this.input.runId, experimentStep: (id, pick) => this.call(id, "run", { type: "body", run: pick }, "group.experiment") }),
      runId: this.input.runId,
      get attempt() {
        return invocation.attemptHere();
      },
      logger: this.replayAwareLogger(),
    };
    const fetchScope = { scope: (): FetchScope => (bodyScope.getStore() ? "inside-step" : "durable"), durable: ctx.step.fetch };
    const stack = this.middleware;
    const start = async () => {
      const handlerCtx = stack ? await this.transformInput(stack, ctx) : ctx;
      this.handlerStarted = true;
      if (this.replay.length === 0) this.endMemoization();
      this.touch();
      const run = async () => runScope.run(fetchScope, () => handler(handlerCtx));
      return stack ? stack.wrapFunctionHandler(run) : run();
    };
    Promise.resolve()
      .then(start)
      .then(
        (value) => (stack ? this.afterHooks(() => stack.notify("onRunComplete", { output: value }), { ok: true, value }) : this.handlerEnded({ ok: true, value })),
        (error: unknown) =>
          stack
            ? this.afterHooks(() => stack.notify("onRunError", { error: error instanceof Error ? error : new Error(serializeError(error).message), isFinalAttempt: this.isFinalHandlerFailure(error) }), { ok: false, error })
            : this.handlerEnded({ ok: false, error }),
      );
    this.scheduleCheck();
    return this.outcome;
  }

  /** transformFunctionInput with the run's stored results, then onRunStart on the run's very first invocation. */
  private async transformInput(stack: MiddlewareStack, ctx: HandlerContext<object>): Promise<HandlerContext<object>> {
    const steps: Record<string, Middleware.MemoizedStep> = {};
    for (const step of this.host.steps.values()) {
      if (step.status === "completed") steps[step.id] = { type: "data", data: structuredClone(step.output) };
      else if (step.status === "failed" && step.error) steps[step.id] = { type: "error", error: step.error };
    }
    const transformed = (await stack.transformFunctionInput(ctx as Middleware.Context, steps)) as HandlerContext<object>;
    // A middleware that spreads the context ({ ...ctx, db }) reads `attempt` once; keep it live.
    const attempt = Object.getOwnPropertyDescriptor(transformed, "attempt");
    if (transformed !== ctx && attempt && "value" in attempt) {
      Object.defineProperty(transformed, "attempt", { get: () => this.attemptHere(), enumerable: true, configurable: true });
    }
    const isFirst = this.host.steps.size === 0 && this.input.starts.length <= 1 && !this.input.recovering && this.input.handlerFailures.count === 0;
    if (isFirst) await stack.notify("onRunStart", {});
    return transformed;
  }

  /** Ends the handler once the hooks that observe its end have run (counted as in flight, so the invocation waits). */
  private afterHooks(hooks: () => Promise<void>, end: NonNullable<Invocation["handlerEnd"]>): void {
    this.inFlight++;
    void hooks().finally(() => {
      this.inFlight--;
      this.handlerEnded(end);
    });
  }

  /** onMemoizationEnd, once: every stored step replayed, or a new step reached first. */
  private endMemoization(): void {
    if (this.memoizationEnded || !this.handlerStarted || !this.middleware) return;
    this.memoizationEnded = true;
    this.afterHooksOnly(() => this.middleware!.notify("onMemoizationEnd", {}));
  }

  private afterHooksOnly(hooks: () => Promise<void>): void {
    this.inFlight++;
    void hooks().finally(() => {
      this.inFlight--;
      this.touch();
    });
  }

  /** Whether this failure of the handler ends the run (as handlerFailed decides it). */
  private isFinalHandlerFailure(err: unknown): boolean {
    return isFinalFailure(this.unitFailures() + 1, this.input.retries, isNonRetriable(err) || isStepError(err));
  }

  private attemptHere(): number {
    const scope = bodyScope.getStore();
    if (scope) return scope.attempt;
    // A step stored in this invocation began a new unit of code outside steps.
    return this.seq === this.initialSeq ? this.initialAttempt : 0;
  }

  /** Failures so far of the code outside steps that runs now (reset by every settled step). */
  private unitFailures(): number {
    return unitFailures(this.input.handlerFailures, this.seq);
  }

  /** Lines written outside step bodies while stored steps are still replaying were written before. */
  private replayAwareLogger(): Logger {
    const logger = this.input.logger;
    const isReplaying = () => !bodyScope.getStore() && this.replayed < this.replay.length;
    return {
      debug: (message, fields) => isReplaying() || logger.debug(message, fields),
      info: (message, fields) => isReplaying() || logger.info(message, fields),
      warn: (message, fields) => isReplaying() || logger.warn(message, fields),
      error: (message, fields) => isReplaying() || logger.error(message, fields),
    };
  }

  private stepTools(): StepTools {
    const call = (id: string, kind: StepKind, work: StepWork) => this.call(id, kind, work);
    return {
      run: (id, fn) => call(id, "run", { type: "body", run: fn }),
      sleep: (id, duration) => call(id, "sleep", { type: "sleep", wakeAt: () => this.clock.now() + nonRetriable(() => toMilliseconds(duration)) }),
      sleepUntil: (id, time) => call(id, "sleep", { type: "sleep", wakeAt: () => nonRetriable(() => toEpochMs(time)) }),
      sendEvent: (id, events) => call(id, "sendEvent", { type: "send", events: Array.isArray(events) ? events : [events] }),
      waitForEvent: (id: string, options: unknown) =>
        call(id, "waitForEvent", { type: "wait", request: () => nonRetriable(() => buildWaitRequest(eventTypeToName(options), this.clock.now())) }),
      invoke: (id: string, options: unknown) => call(id, "invoke", { type: "wait", request: () => nonRetriable(() => buildInvokeRequest(options, this.clock.now())) }),
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

  /** Gives a step call its id synchronously (call order decides repeats) and settles it in turn. */
  private call<T>(id: string, kind: StepKind, work: StepWork, stepType?: Middleware.StepType): Promise<T> {
    if (this.stepCount >= MAX_STEPS_PER_RUN) {
      return Promise.reject(
        new NonRetriableError(`run has more than ${MAX_STEPS_PER_RUN} steps (at step "${id}"); the limit is ${MAX_STEPS_PER_RUN} steps per run`),
      );
    }
    // Handler code still running after the handler ended (a branch left behind by a rejected
    // Promise.all) starts no step: the next invocation owns the run's future.
    if (this.handlerEnd || this.settled) return new Promise<T>(() => {});
    const variant = variantScope.getStore();
    if (variant) variant.calledStep = true;
    this.stepCount++;
    const name = this.ids.next(id);
    const hashed = hashStepId(name);
    let pending!: StepCall;
    const result = new Promise<T>((resolve, reject) => {
      pending = { name, id: hashed, kind, work, resolve: resolve as (value: unknown) => void, reject };
    });
    if (!this.middleware) {
      this.request(pending);
      return result;
    }
    const stored = this.host.steps.get(hashed);
    pending.info = { hashedId: hashed, memoized: stored !== undefined && this.settlesOnReplay(stored), options: { id }, stepType: stepType ?? STEP_TYPES[kind] };
    // The step is requested when the innermost wrapStep calls next(), once however often it is called.
    let requested = false;
    return this.middleware.wrapStep(pending.info, () => {
      if (!requested) {
        requested = true;
        this.request(pending);
      }
      return result;
    }) as Promise<T>;
  }

  private request(call: StepCall): void {
    this.touch();
    const stored = this.host.steps.get(call.id);
    if (stored && this.settlesOnReplay(stored)) {
      this.requested.set(call.id, () => this.settleStored(call, stored));
      return;
    }
    // A sleep or wait still to come, or a wait resolved after this invocation began.
    if (stored && settlesByTime(stored)) return this.park(stored.wakeAt!);
    if (isRetryAhead(stored, this.startedAt)) return this.park(stored!.wakeAt!);
    if (this.host.isCancelled()) return;
    this.endMemoization();
    if (call.work.type === "publish") return this.startPublish(call, call.work.message);
    if (call.work.type === "sleep") return this.startSleep(call);
    if (call.work.type === "wait") return this.startWait(call, call.work.request);
    if (this.recovering) {
      this.frontier.push(call);
      return;
    }
    this.startBody(call, stored);
  }

  private settlesOnReplay(stored: StepRecord): boolean {
    if (settlesByTime(stored)) return stored.wakeAt! <= this.startedAt;
    return stored.status === "completed" || stored.status === "failed";
  }

  private settleStored(call: StepCall, stored: StepRecord): void {
    const result = memoizedResult(stored);
    if ("error" in result) return call.reject(new StepError(call.name, result.error));
    // A sleep and a published message give the handler nothing.
    if (stored.status === "sleeping" || stored.kind === "publish") return call.resolve(undefined);
    // A copy: the handler may change what it gets without touching the stored result.
    call.resolve(structuredClone(result.data));
  }

  private startSleep(call: StepCall): void {
    let wakeAt: number;
    try {
      wakeAt = (call.work as { wakeAt: () => number }).wakeAt();
    } catch (err) {
      return call.reject(err);
    }
    const record = sleepStep(call, wakeAt, this.clock.now(), () => ++this.seq);
    if (record.status === "completed") return this.store(record, undefined, () => this.hold(record.seq!, () => call.resolve(undefined)));
    this.store(record, undefined, () => this.park(wakeAt));
  }

  /**
   * Stores a published message as a completed step (its output the message), so a replay settles
   * it without sending it again. No user code runs: it waits for no `ready`.
   */
  private startPublish(call: StepCall, message: PublishedMessage): void {
    const bytes = publishedBytes(message);
    try {
      checkRunState(`step.publish("${message.topic}")`, bytes, this.storedBytes);
    } catch (err) {
      return call.reject(err);
    }
    this.storedBytes += bytes;
    const now = this.clock.now();
    const seq = ++this.seq;
    const record: StepRecord = { id: call.id, name: call.name, kind: "publish", status: "completed", attempts: 1, output: message, seq, startedAt: now, endedAt: now };
    this.store(record, undefined, () => this.hold(seq, () => call.resolve(undefined)));
  }

  /** Stores a wait or child run as waiting until its timeout: the host registers it, and resolves it from outside. */
  private startWait(call: StepCall, build: () => StepRequest): void {
    let request: StepRequest;
    try {
      request = build();
    } catch (err) {
      return call.reject(err);
    }
    const record = waitingStep(call, request, this.startedAt, this.clock.now());
    this.store(record, undefined, () => this.park(record.wakeAt!));
  }

  /** Runs a new step (or a retry of one): its body, then stores the result or the failure. */
  private startBody(call: StepCall, stored: StepRecord | undefined): void {
    const attempts = stored?.attempts ?? 0;
    const startedAt = this.clock.now();
    let events: StoredEvent[] | undefined;
    const work = call.work;
    const send = async (list: EventPayload[]) => {
      // Events that do not validate will not validate on a retry either.
      events = nonRetriable(() => this.host.prepareEvents(list, (position) => sendEventId(this.input.runId, call.name, position)));
      return { ids: events.map((event) => event.id) };
    };
    const stack = this.middleware;
    const code = work.type === "send" ? () => (stack ? stack.sendEvents(work.events, send) : send(work.events)) : (work as { run: () => unknown }).run;
    const isFinalAttempt = (err: unknown) => isFinalFailure(attempts + 1, this.input.retries, isNonRetriable(err));
    const body = stack && call.info ? () => stack.runStepHandler(call.info!, code, isFinalAttempt) : code;
    this.inFlight++;
    // No body runs before the host has made this invocation's start durable (see RunHost.ready).
    (this.host.ready ?? Promise.resolve())
      .then(
        () => bodyScope.run({ attempt: attempts }, () => this.withStepTimeout(call.name, body)),
        (err: unknown) => {
          this.break(err);
          return new Promise<never>(() => {});
        },
      )
      .then(
        (value) => {
          if (this.host.isCancelled()) return;
          let completed;
          try {
            completed = completedStep(call, stored, value, { storedBytes: this.storedBytes, nextSeq: () => ++this.seq, startedAt, endedAt: this.clock.now() });
          } catch (err) {
            return this.stepFailed(call, startedAt, err);
          }
          const { record, bytes } = completed;
          this.storedBytes += bytes;
          this.store(record, events, () => this.hold(record.seq!, () => call.resolve(structuredClone(record.output))));
        },
        (err: unknown) => {
          if (!this.host.isCancelled()) this.stepFailed(call, startedAt, err);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.touch();
      });
  }

  /** A failed attempt of a step: stored as failed for good (the handler gets a StepError) or as retrying (the path parks until then). */
  private stepFailed(call: StepCall, startedAt: number, err: unknown): void {
    const endedAt = this.clock.now();
    const failure = { error: serializeError(err), failsForGood: isNonRetriable(err), retryAfter: retryAfterOf(err, endedAt), startedAt, endedAt };
    const record = failedStep(call, this.host.steps.get(call.id), failure, { retries: this.input.retries, nextSeq: () => ++this.seq, random: () => this.clock.random() });
    if (record.status === "failed") return this.store(record, undefined, () => this.hold(record.seq!, () => call.reject(new StepError(call.name, record.error!))));
    logStepRetry(this.input.logger, record);
    this.store(record, undefined, () => this.park(record.wakeAt!));
  }

  /** Stores a record, then goes on; a store that fails breaks the invocation (the host retries it). */
  private store(record: StepRecord, events: StoredEvent[] | undefined, then: () => void): void {
    this.inFlight++;
    Promise.resolve()
      .then(() => this.host.saveStep(record, events))
      .then(then, (err: unknown) => this.break(err))
      .finally(() => {
        this.inFlight--;
        this.touch();
      });
  }

  /** Runs a step body, failing it (retriably) if it has not finished within the step timeout. */
  private withStepTimeout<T>(name: string, fn: () => T): Promise<Awaited<T>> {
    let timer: unknown;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimer(
        () => reject(new StepTimeoutError(`step "${name}" did not finish within ${this.input.stepTimeoutMs} ms, the function's stepTimeout`)),
        this.input.stepTimeoutMs,
      );
    });
    return Promise.race([Promise.resolve().then(fn), timeout]).finally(() => this.clock.clearTimer(timer));
  }

  /** Parks a path of the handler until `wakeAt`: its promise never settles in this invocation. */
  private park(wakeAt: number): void {
    this.wakeTimes.push(wakeAt);
    this.touch();
  }

  /** A new result reaches the handler once the replay has settled what settled before it. */
  private hold(seq: number, deliver: () => void): void {
    this.held.push({ seq, deliver });
    this.held.sort((a, b) => a.seq - b.seq);
    this.touch();
  }

  private handlerEnded(end: NonNullable<Invocation["handlerEnd"]>): void {
    this.handlerEnd = end;
    this.touch();
  }

  private touch(): void {
    this.activity++;
    this.scheduleCheck();
  }

  private scheduleCheck(): void {
    this.clock.clearTimer(this.idleTimer);
    if (this.checkScheduled || this.settled) return;
    this.checkScheduled = true;
    void this.clock.yield().then(() => {
      this.checkScheduled = false;
      this.check();
    });
  }

  /**
   * Moves the invocation on by one thing per turn of the event loop, so the handler reacts to each
   * settled step before the next: a stored result in its turn, then a new result once the stored
   * ones are all settled, then the recovery of what a dead invocation left running, then the end
   * once nothing moves.
   */
  private check(): void {
    if (this.settled) return;
    const moved = this.activity !== this.checkedActivity;
    this.checkedActivity = this.activity;
    if (this.host.isCancelled()) {
      if (this.inFlight === 0) this.settle({ type: "cancelled" });
      return;
    }
    const next = this.replay[this.replayed];
    const settleNext = next === undefined ? undefined : this.requested.get(next);
    if (settleNext) {
      this.replayed++;
      this.requested.delete(next!);
      // Before the handler goes on from the last stored step, so the hook comes before any new step.
      if (this.replayed >= this.replay.length) this.endMemoization();
      settleNext();
      return this.touch();
    }
    // Not before the replay is done, even when nothing moves: the handler may be awaiting
    // something outside steps before it asks for the next stored step. And in seq order: a
    // slower save of an earlier result holds back the later ones.
    const replayDone = this.replayed >= this.replay.length;
    if (replayDone) this.endMemoization();
    const nextHeld = this.held[0];
    if (nextHeld && replayDone && nextHeld.seq === this.delivered + 1) {
      this.held.shift();
      this.delivered = nextHeld.seq;
      nextHeld.deliver();
      return this.touch();
    }
    if (moved) return this.scheduleCheck();
    if (this.frontier.length > 0 && this.inFlight === 0) return this.recoverFrontier();
    if (this.inFlight > 0) return;
    if (this.handlerEnd) return this.settle(this.handlerEnd.ok ? completedOutcome(this.handlerEnd.value) : this.handlerFailed(this.handlerEnd.error));
    if (this.wakeTimes.length > 0) return this.settle({ type: "suspended", wakeAt: Math.min(...this.wakeTimes) });
    // Nothing runs, nothing waits for a time: the handler's own code is busy (or hangs).
    this.idleTimer = this.clock.setTimer(() => {
      const error = new StepTimeoutError(`the handler ran outside any step for ${this.input.stepTimeoutMs} ms without finishing (the function's stepTimeout)`);
      this.handlerEnded({ ok: false, error });
    }, this.input.stepTimeoutMs);
  }

  /** Each step the dead invocation had running failed an attempt: the runtime died under it. */
  private recoverFrontier(): void {
    const calls = this.frontier;
    this.frontier = [];
    this.recovering = false;
    const now = this.clock.now();
    for (const call of calls) {
      const error = new Error(`the runtime died while running step "${call.name}" (the isolate ran out of CPU or memory, crashed, or was restarted)`);
      error.name = "RuntimeDiedError";
      this.stepFailed(call, now, error);
    }
  }

  private handlerFailed(err: unknown): RunOutcome {
    const now = this.clock.now();
    const run = { handlerFailures: this.input.handlerFailures, seq: this.seq, retries: this.input.retries, retryAfter: retryAfterOf(err, now), now, random: () => this.clock.random() };
    return handlerFailure(serializeError(err), isNonRetriable(err) || isStepError(err), run);
  }

  private settle(outcome: RunOutcome): void {
    this.settled = true;
    this.clock.clearTimer(this.idleTimer);
    this.resolveOutcome(outcome);
  }

  private break(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.clock.clearTimer(this.idleTimer);
    this.rejectOutcome(err);
  }
}

/** Inngest v4 waits for an `eventType` as it does for its name. */
function eventTypeToName(options: unknown): unknown {
  const event = (options as { event?: unknown } | null)?.event;
  return event instanceof EventType ? { ...(options as object), event: event.name } : options;
}

/** Runs `read`; an error it throws (a duration or time that cannot be read) will not get better by retrying. */
function nonRetriable<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw isNonRetriable(err) ? err : new NonRetriableError(serializeError(err).message);
  }
}
