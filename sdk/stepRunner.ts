// What a new step does in the driver (sdk/driver.ts): a body runs (within the step timeout,
// through middleware) and its result or failed attempt is stored; a sleep, a wait or child run,
// or a published message is stored. Each record follows the run's rules (sdk/runRules.ts).

import type { Clock } from "./clock.ts";
import { isNonRetriable, retryAfterOf } from "./errors/recognize.ts";
import { StepError } from "./errors/StepError.ts";
import { StepTimeoutError } from "./errors/StepTimeoutError.ts";
import type { EventPayload, StoredEvent } from "./event.ts";
import type { MiddlewareStack } from "./middleware/stack.ts";
import { checkRunState } from "./output.ts";
import { publishedBytes, type PublishedMessage } from "./publish.ts";
import type { RunHost, RunInput, StepRecord } from "./run.ts";
import { completedStep, failedStep, isFinalFailure, logStepRetry, sleepStep, storedBytesOf, waitingStep } from "./runRules.ts";
import { sendEventId } from "./step.ts";
import { bodyScope, nonRetriable, type StepCall } from "./stepCalls.ts";
import { serializeError } from "./types.ts";
import type { StepRequest } from "./wait.ts";

/** What starting a step needs of its invocation. */
export interface StepRunnerTarget {
  input: RunInput;
  host: RunHost;
  clock: Clock;
  /** When the invocation began. */
  startedAt: number;
  middleware: MiddlewareStack | undefined;
  /** Takes the next completion seq. */
  nextSeq(): number;
  /** Counts `work` as in flight until it settles: the invocation does not end meanwhile. */
  track(work: Promise<unknown>): void;
  /** A new result, stored, reaches the handler in its turn. */
  hold(seq: number, deliver: () => void): void;
  /** Parks a path of the handler until `wakeAt`. */
  park(wakeAt: number): void;
  /** Ends the invocation with `err` (a store failed): the host retries it. */
  break(err: unknown): void;
}

/** Starts the new steps of one invocation, and counts the bytes its run stores. */
export class StepRunner {
  private storedBytes: number;

  constructor(private readonly target: StepRunnerTarget) {
    this.storedBytes = storedBytesOf(target.host.steps.values());
  }

  sleep(call: StepCall, wakeAtOf: () => number): void {
    const wakeAt = orReject(call, wakeAtOf);
    if (wakeAt === undefined) return;
    const record = sleepStep(call, wakeAt, this.target.clock.now(), () => this.target.nextSeq());
    if (record.status === "completed") return this.store(record, undefined, () => this.target.hold(record.seq!, () => call.resolve(undefined)));
    this.store(record, undefined, () => this.target.park(wakeAt));
  }

  /**
   * Stores a published message as a completed step (its output the message), so a replay settles
   * it without sending it again. No user code runs: it waits for no `ready`.
   */
  publish(call: StepCall, message: PublishedMessage): void {
    const bytes = publishedBytes(message);
    if (!orReject(call, () => (checkRunState(`step.publish("${message.topic}")`, bytes, this.storedBytes), true))) return;
    this.storedBytes += bytes;
    const now = this.target.clock.now();
    const seq = this.target.nextSeq();
    const record: StepRecord = { id: call.id, name: call.name, kind: "publish", status: "completed", attempts: 1, output: message, seq, startedAt: now, endedAt: now };
    this.store(record, undefined, () => this.target.hold(seq, () => call.resolve(undefined)));
  }

  /** Stores a wait or child run as waiting until its timeout: the host registers it, and resolves it from outside. */
  wait(call: StepCall, build: () => StepRequest): void {
    const request = orReject(call, build);
    if (!request) return;
    const record = waitingStep(call, request, this.target.startedAt, this.target.clock.now());
    this.store(record, undefined, () => this.target.park(record.wakeAt!));
  }

  /** Runs a new step (or a retry of one): its body, then stores the result or the failure. */
  body(call: StepCall, stored: StepRecord | undefined): void {
    const { input, host, clock } = this.target;
    const attempts = stored?.attempts ?? 0;
    const startedAt = clock.now();
    let events: StoredEvent[] | undefined;
    const work = call.work;
    const send = async (list: EventPayload[]) => {
      // Events that do not validate will not validate on a retry either.
      events = nonRetriable(() => host.prepareEvents(list, (position) => sendEventId(input.runId, call.name, position)));
      return { ids: events.map((event) => event.id) };
    };
    const stack = this.target.middleware;
    const code = work.type === "send" ? () => (stack ? stack.sendEvents(work.events, send) : send(work.events)) : (work as { run: () => unknown }).run;
    const isFinalAttempt = (err: unknown) => isFinalFailure(attempts + 1, input.retries, isNonRetriable(err));
    const body = stack && call.info ? () => stack.runStepHandler(call.info!, code, isFinalAttempt) : code;
    // No body runs before the host has made this invocation's start durable (see RunHost.ready).
    const run = (host.ready ?? Promise.resolve())
      .then(
        () => bodyScope.run({ attempt: attempts }, () => this.withStepTimeout(call.name, body)),
        (err: unknown) => {
          this.target.break(err);
          return new Promise<never>(() => {});
        },
      )
      .then(
        (value) => {
          if (host.isCancelled()) return;
          let completed;
          try {
            completed = completedStep(call, stored, value, { storedBytes: this.storedBytes, nextSeq: () => this.target.nextSeq(), startedAt, endedAt: clock.now(), maxOutputBytes: host.maxStepOutputBytes });
          } catch (err) {
            return this.failed(call, startedAt, err);
          }
          const { record, bytes } = completed;
          this.storedBytes += bytes;
          this.store(record, events, () => this.target.hold(record.seq!, () => call.resolve(structuredClone(record.output))));
        },
        (err: unknown) => {
          if (!host.isCancelled()) this.failed(call, startedAt, err);
        },
      );
    this.target.track(run);
  }

  /** A failed attempt of a step: stored as failed for good (the handler gets a StepError) or as retrying (the path parks until then). */
  failed(call: StepCall, startedAt: number, err: unknown): void {
    const { input, host, clock } = this.target;
    const endedAt = clock.now();
    const failure = { error: serializeError(err), failsForGood: isNonRetriable(err), retryAfter: retryAfterOf(err, endedAt), startedAt, endedAt };
    const record = failedStep(call, host.steps.get(call.id), failure, { retries: input.retries, nextSeq: () => this.target.nextSeq(), random: () => clock.random() });
    if (record.status === "failed") return this.store(record, undefined, () => this.target.hold(record.seq!, () => call.reject(new StepError(call.name, record.error!))));
    logStepRetry(input.logger, record);
    this.store(record, undefined, () => this.target.park(record.wakeAt!));
  }

  /** Stores a record, then goes on; a store that fails breaks the invocation (the host retries it). */
  private store(record: StepRecord, events: StoredEvent[] | undefined, then: () => void): void {
    const save = Promise.resolve()
      .then(() => this.target.host.saveStep(record, events))
      .then(then, (err: unknown) => this.target.break(err));
    this.target.track(save);
  }

  /** Runs a step body, failing it (retriably) if it has not finished within the step timeout. */
  private withStepTimeout<T>(name: string, fn: () => T): Promise<Awaited<T>> {
    const { input, clock } = this.target;
    let timer: unknown;
    const timeout = new Promise<never>((_, reject) => {
      timer = clock.setTimer(() => reject(new StepTimeoutError(`step "${name}" did not finish within ${input.stepTimeoutMs} ms, the function's stepTimeout`)), input.stepTimeoutMs);
    });
    return Promise.race([Promise.resolve().then(fn), timeout]).finally(() => clock.clearTimer(timer));
  }
}

/** What `read` gives; when it throws, the step call is rejected with the error and this gives undefined. */
function orReject<T>(call: StepCall, read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    call.reject(err);
    return undefined;
  }
}
