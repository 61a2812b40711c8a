// The driver: one invocation of a handler against its run's stored steps, and the loop that moves
// it on (replay, new results, middleware's run hooks, its end). The step tools are in stepCalls.ts,
// what a new step does in stepRunner.ts, the order results reach the handler in settleOrder.ts.

import { createGroupTools } from "./group.ts";
import { MiddlewareStack } from "./middleware/stack.ts";
import { runScope, type FetchScope } from "./fetch.ts";
import { isNonRetriable, isStepError, retryAfterOf } from "./errors/recognize.ts";
import type { Clock } from "./clock.ts";
import { StepError } from "./errors/StepError.ts";
import { StepTimeoutError } from "./errors/StepTimeoutError.ts";
import type { StoredEvent } from "./event.ts";
import { highestSeq, replayOrder, settlesByTime } from "./replay.ts";
import { serializeError, type Logger } from "./types.ts";
import { handlerFailure, invocationStart, isFinalFailure, isRetryAhead, isRetryDue, memoizedResult, unitFailures } from "./runRules.ts";
import { completedOutcome, type Handler, type HandlerContext, type RunHost, type RunInput, type RunOutcome, type StepRecord } from "./run.ts";
import { SettleOrder } from "./settleOrder.ts";
import { bodyScope, StepCalls, type StepCall } from "./stepCalls.ts";
import { StepRunner } from "./stepRunner.ts";

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

class Invocation {
  private readonly clock: Clock;
  /** When this invocation began: what decides whether a stored sleep or retry is due. */
  private readonly startedAt: number;
  /** Stored steps to settle, first settled first, then new results by seq. */
  private readonly order: SettleOrder;
  private readonly calls: StepCalls;
  private readonly runner: StepRunner;
  /** Steps reached without a result while recovering: what the dead invocation had running. */
  private frontier: StepCall[] = [];
  private recovering: boolean;
  private seq: number;
  private readonly initialSeq: number;
  private readonly initialAttempt: number;
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
    this.seq = this.initialSeq = highestSeq(host.steps.values());
    this.order = new SettleOrder(replayOrder(host.steps.values(), input.starts), this.seq);
    this.recovering = input.recovering;
    let retried = -1;
    for (const step of host.steps.values()) if (isRetryDue(step, this.startedAt)) retried = Math.max(retried, step.attempts);
    // A handler that destructures `attempt` reads it once: make that the attempt of the step this
    // invocation woke up to retry, as Inngest's per-step requests would show it.
    this.initialAttempt = retried >= 0 ? retried : this.unitFailures();
    if (input.middleware?.classes.length) this.middleware = new MiddlewareStack(input.middleware, input.logger);
    this.calls = new StepCalls({
      clock: this.clock,
      middleware: this.middleware,
      stored: (id) => host.steps.get(id),
      isOver: () => this.handlerEnd !== undefined || this.settled,
      settlesOnReplay: (stored) => this.settlesOnReplay(stored),
      request: (call) => this.request(call),
    });
    this.runner = new StepRunner({
      input,
      host,
      clock: this.clock,
      startedAt: this.startedAt,
      middleware: this.middleware,
      nextSeq: () => ++this.seq,
      track: (work) => this.track(work),
      hold: (seq, deliver) => this.hold(seq, deliver),
      park: (wakeAt) => this.park(wakeAt),
      break: (err) => this.break(err),
    });
  }

  execute(handler: Handler<object, unknown>): Promise<RunOutcome> {
    const invocation = this;
    const ctx: HandlerContext<object> = {
      event: this.input.events[0] as StoredEvent<object>,
      events: this.input.events as StoredEvent<object>[],
      step: this.calls.tools(),
      group: createGroupTools({ runId: this.input.runId, experimentStep: (id, pick) => this.calls.call(id, "run", { type: "body", run: pick }, "group.experiment") }),
      runId: this.input.runId,
      get attempt() {
        return invocation.attemptHere();
      },
      logger: this.replayAwareLogger(),
    };
    const fetchScope = { scope: (): FetchScope => (bodyScope.getStore() ? "inside-step" : "durable"), durable: ctx.step.fetch };
    const stack = this.middleware;
    const start = async () => {
      const handlerCtx = stack ? await stack.startHandler(ctx, this.host.steps.values(), () => this.isFirstInvocation(), () => this.attemptHere()) : ctx;
      this.handlerStarted = true;
      if (!this.order.hasStoredSteps) this.endMemoization();
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
    return stack ? this.outcome.then(async (outcome) => (await stack.endInvocation(), outcome)) : this.outcome;
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
    this.track(this.middleware.notify("onMemoizationEnd", {}));
  }

  /** The run's very first invocation: nothing stored, not recovering, no failure of the handler yet. */
  private isFirstInvocation(): boolean {
    return this.host.steps.size === 0 && this.input.starts.length <= 1 && !this.input.recovering && this.input.handlerFailures.count === 0;
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
    const isReplaying = () => !bodyScope.getStore() && this.order.isReplaying;
    return {
      debug: (message, fields) => isReplaying() || logger.debug(message, fields),
      info: (message, fields) => isReplaying() || logger.info(message, fields),
      warn: (message, fields) => isReplaying() || logger.warn(message, fields),
      error: (message, fields) => isReplaying() || logger.error(message, fields),
    };
  }

  private request(call: StepCall): void {
    this.touch();
    const stored = this.host.steps.get(call.id);
    if (stored && this.settlesOnReplay(stored)) {
      this.order.requestStored(call.id, () => this.settleStored(call, stored));
      return;
    }
    // A sleep or wait still to come, or a wait resolved after this invocation began.
    if (stored && settlesByTime(stored)) return this.park(stored.wakeAt!);
    if (isRetryAhead(stored, this.startedAt)) return this.park(stored!.wakeAt!);
    if (this.host.isCancelled()) return;
    this.endMemoization();
    if (call.work.type === "publish") return this.runner.publish(call, call.work.message);
    if (call.work.type === "sleep") return this.runner.sleep(call, call.work.wakeAt);
    if (call.work.type === "wait") return this.runner.wait(call, call.work.request);
    if (this.recovering) {
      this.frontier.push(call);
      return;
    }
    this.runner.body(call, stored);
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

  /** Parks a path of the handler until `wakeAt`: its promise never settles in this invocation. */
  private park(wakeAt: number): void {
    this.wakeTimes.push(wakeAt);
    this.touch();
  }

  /** A new result reaches the handler once the replay has settled what settled before it. */
  private hold(seq: number, deliver: () => void): void {
    this.order.hold(seq, deliver);
    this.touch();
  }

  /** Counts `work` as in flight until it settles: the invocation does not end meanwhile. */
  private track(work: Promise<unknown>): void {
    this.inFlight++;
    void work.finally(() => {
      this.inFlight--;
      this.touch();
    });
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
    const stored = this.order.takeStored();
    if (stored) {
      // Before the handler goes on from the last stored step, so the hook comes before any new step.
      if (stored.last) this.endMemoization();
      stored.settle();
      return this.touch();
    }
    // Not before the replay is done, even when nothing moves: the handler may be awaiting
    // something outside steps before it asks for the next stored step. And in seq order: a
    // slower save of an earlier result holds back the later ones.
    if (!this.order.isReplaying) this.endMemoization();
    const deliver = this.order.takeHeld();
    if (deliver) {
      deliver();
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
      this.runner.failed(call, now, error);
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
