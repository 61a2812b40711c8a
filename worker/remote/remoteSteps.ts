// A remote run's steps as one invocation of the executor knows and stores them, by the rules the
// driver follows (sdk/runRules.ts): a step's result, a failed attempt and its retry, a sleep, a
// wait or child run; and what they tell of the run: the memo for the app, when the run is due
// again, the attempt and the retry of the handler's code.

import type { Clock } from "../../sdk/clock.ts";
import { highestSeq, replayOrder } from "../../sdk/replay.ts";
import type { RunHost, RunInput, RunOutcome, StepRecord } from "../../sdk/run.ts";
import {
  completedStep,
  failedStep,
  handlerFailure,
  invocationStart,
  isRetryAhead,
  logStepRetry,
  memoizedResult,
  sleepStep,
  storedBytesOf,
  unitFailures,
  waitingStep,
  type StepIdentity,
} from "../../sdk/runRules.ts";
import { serializeError, type SerializedError } from "../../sdk/types.ts";
import type { StepRequest } from "../../sdk/wait.ts";
import type { CallBody } from "./transport.ts";

export class RemoteSteps {
  /** The stored steps, this invocation's saves included. */
  private readonly steps: Map<string, StepRecord>;
  /** When this invocation began. */
  readonly startedAt: number;
  readonly clock: Clock;
  private seq: number;
  private storedBytes: number;
  /** Set when a save settled a step (or the app asked to be called again): the app is asked what comes next. */
  progressed = false;
  private closed = false;

  constructor(
    private readonly input: RunInput,
    private readonly host: RunHost,
  ) {
    this.clock = host.clock;
    this.steps = new Map(host.steps);
    this.startedAt = invocationStart(input, host.clock);
    this.seq = highestSeq(this.steps.values());
    this.storedBytes = storedBytesOf(this.steps.values());
  }

  get(id: string): StepRecord | undefined {
    return this.steps.get(id);
  }

  values(): IterableIterator<StepRecord> {
    return this.steps.values();
  }

  /** A step's result, held to the output limits: a result that breaks one fails the step for good. */
  async completed(step: StepIdentity, data: unknown, startedAt: number): Promise<void> {
    let completed;
    try {
      completed = completedStep(step, this.steps.get(step.id), data, { storedBytes: this.storedBytes, nextSeq: () => ++this.seq, startedAt, endedAt: this.clock.now(), maxOutputBytes: this.host.maxStepOutputBytes });
    } catch (err) {
      return this.failed(step, serializeError(err), true, startedAt, undefined);
    }
    this.storedBytes += completed.bytes;
    await this.save(completed.record);
  }

  /** A failed attempt: retried after a backoff (or the app's `retry-after`) until the function's retries are spent, then failed for good. */
  async failed(step: StepIdentity, error: SerializedError, final: boolean, startedAt: number, retryAt: number | undefined): Promise<void> {
    const failure = { error, failsForGood: final, retryAfter: retryAt, startedAt, endedAt: this.clock.now() };
    // A retry at least 1 ms ahead: nextWake finds a pending retry only ahead of the invocation's start.
    const run = { retries: this.input.retries, nextSeq: () => ++this.seq, random: () => this.clock.random(), minRetryDelayMs: 1 };
    const record = failedStep(step, this.steps.get(step.id), failure, run);
    if (record.status === "failed") return this.save(record);
    logStepRetry(this.input.logger, record);
    await this.save(record, false);
  }

  /** A sleep until `wakeAt` (over at once when it has come); a sleep reported again is stored once. */
  async sleep(step: Pick<StepIdentity, "id" | "name">, wakeAt: number, now: number): Promise<void> {
    const record = sleepStep(step, wakeAt, now, () => ++this.seq);
    await this.save(record, record.status === "completed");
  }

  /** A wait or child run: stored as waiting (the RunObject registers it), parked until its timeout or its resolution. */
  async wait(step: StepIdentity, request: StepRequest): Promise<void> {
    await this.save(waitingStep(step, request, this.startedAt, this.clock.now()), false);
  }

  /** After the invocation has its outcome, a request still out (a race's loser) stores nothing. */
  close(): void {
    this.closed = true;
  }

  private async save(record: StepRecord, settles = true): Promise<void> {
    if (this.closed || this.host.isCancelled()) return;
    // Set first: a checkpoint and an answer reporting the same step store it once.
    this.steps.set(record.id, record);
    await this.host.saveStep(record);
    if (settles) this.progressed = true;
  }

  /** The settled steps as the app's memo, in the order they settled (the stack). */
  memo(): { steps: CallBody["steps"]; stack: string[] } {
    const stack = replayOrder(this.steps.values(), this.input.starts);
    const steps: CallBody["steps"] = {};
    for (const id of stack) {
      const result = memoizedResult(this.steps.get(id)!);
      steps[id] = "error" in result ? result : { data: result.data ?? null };
    }
    return { steps, stack };
  }

  /**
   * When the run is due again, from its stored steps: the earliest retry, sleep end, wait or child
   * run timeout still ahead of this invocation, or a wait resolved since it began.
   */
  nextWake(): number | undefined {
    let next: number | undefined;
    for (const step of this.steps.values()) {
      const ahead = step.wakeAt !== undefined && step.wakeAt > this.startedAt;
      const pending = step.status === "retrying" || step.status === "sleeping" || step.status === "waiting" || step.seq === undefined;
      if (ahead && pending) next = Math.min(next ?? Infinity, step.wakeAt!);
    }
    return next;
  }

  /** True while a step waits for its retry. */
  retryPending(): boolean {
    const now = this.clock.now();
    for (const step of this.steps.values()) if (isRetryAhead(step, now)) return true;
    return false;
  }

  /** Attempt of the handler's code since the last settled step (Inngest counts a discovery as a unit). */
  handlerAttempt(): number {
    return unitFailures(this.input.handlerFailures, this.seq);
  }

  /** The app failed outside a step (or could not be reached): the discovery is retried as a local handler's code would be. */
  handlerFailed(error: SerializedError, retryAt: number | undefined): RunOutcome {
    // Never final by itself: an app reports a failure that must not be retried as an answer of its own ("failed").
    const run = { handlerFailures: this.input.handlerFailures, seq: this.seq, retries: this.input.retries, retryAfter: retryAt, now: this.clock.now(), random: () => this.clock.random() };
    return handlerFailure(error, false, run);
  }
}
