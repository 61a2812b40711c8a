// The rules of a run that every executor follows, the in-process driver (sdk/driver.ts) and the
// remote executor (worker/remote/execute.ts) alike: a step's result and its failure, the retry of
// a step or of the handler's code, sleeps and waits as stored, and the run-state size count.

import type { Clock } from "./clock.ts";
import { InngestInvokeTimeoutError } from "./errors/InngestInvokeTimeoutError.ts";
import { serializeOutput, utf8Bytes } from "./output.ts";
import { backoffDelay } from "./retry.ts";
import type { HandlerFailures, RunInput, RunOutcome, StepRecord } from "./run.ts";
import type { Logger, SerializedError } from "./types.ts";
import type { StepRequest } from "./wait.ts";

/** A step as an executor knows it before it stores it. */
export type StepIdentity = Pick<StepRecord, "id" | "name" | "kind">;

/** When this invocation began: what decides whether a stored sleep, wait or retry is due. */
export function invocationStart(input: RunInput, clock: Clock): number {
  return input.starts.at(-1)?.at ?? clock.now();
}

/** The bytes of every stored step output: what the run-state limit (32 MiB) counts. */
export function storedBytesOf(steps: Iterable<StepRecord>): number {
  let bytes = 0;
  for (const step of steps) bytes += step.output === undefined ? 0 : utf8Bytes(JSON.stringify(step.output));
  return bytes;
}

/**
 * What a stored step gives the handler when a replay reaches it: its output, or the error it
 * throws (its last failure, or an invoke's timeout); a sleep or a wait still pending gives null.
 */
export function memoizedResult(step: StepRecord): { data: unknown } | { error: SerializedError } {
  if (step.status === "failed") return { error: step.error ?? { name: "Error", message: "unknown error" } };
  // Still waiting at its timeout: a wait returns null, an invoke throws.
  if (step.status === "waiting" && step.kind === "invoke") return { error: new InngestInvokeTimeoutError(step.name).toSerialized() };
  if (step.status === "waiting" || step.status === "sleeping") return { data: null };
  return { data: step.output };
}

/** True for a step that waits for its retry and whose time has come by `at`. */
export function isRetryDue(step: StepRecord | undefined, at: number): boolean {
  return step?.status === "retrying" && (step.wakeAt ?? 0) <= at;
}

/** True for a step that waits for its retry and whose time is still ahead of `at`. */
export function isRetryAhead(step: StepRecord | undefined, at: number): boolean {
  return step?.status === "retrying" && (step.wakeAt ?? 0) > at;
}

/** True when failure number `failures` (1 for the first) of a unit is its last: it said so, or the function's `retries` are spent. */
export function isFinalFailure(failures: number, retries: number, failsForGood = false): boolean {
  return failsForGood || failures > retries;
}

/**
 * When a failed unit (a step, or the handler's code between steps) runs again: at the time its
 * error asked for (a RetryAfterError, an app's retry-after), else after Inngest's backoff.
 */
export function retryTime(failures: number, retryAfter: number | undefined, now: number, random: () => number): number {
  return retryAfter ?? now + backoffDelay(failures, random);
}

/** Failures so far of the handler's code that runs now (the count is reset by every settled step). */
export function unitFailures(failures: HandlerFailures, seq: number): number {
  return failures.unitSeq === seq ? failures.count : 0;
}

/**
 * The handler's code failed outside steps: the run fails when the failure says so or the unit's
 * retries are spent; else the invocation is retried, with the failure counted against the code
 * after the step whose seq is `seq`.
 */
export function handlerFailure(
  error: SerializedError,
  failsForGood: boolean,
  run: { handlerFailures: HandlerFailures; seq: number; retries: number; retryAfter: number | undefined; now: number; random: () => number },
): RunOutcome {
  const count = unitFailures(run.handlerFailures, run.seq) + 1;
  if (isFinalFailure(count, run.retries, failsForGood)) return { type: "failed", error };
  return { type: "retry", error, wakeAt: retryTime(count, run.retryAfter, run.now, run.random), handlerFailures: { count, unitSeq: run.seq } };
}

/**
 * A step's result as stored, held to the output limits given the run's `storedBytes`: completed
 * with its attempts counted on and its earlier failures kept. Throws a NonRetriableError naming the
 * limit a result breaks (or saying it is not JSON); `nextSeq` is called only for a result stored.
 */
export function completedStep(
  step: StepIdentity,
  stored: StepRecord | undefined,
  value: unknown,
  run: { storedBytes: number; nextSeq: () => number; startedAt: number; endedAt: number; maxOutputBytes?: number },
): { record: StepRecord; bytes: number } {
  // A host at the default limit may raise it: the Worker does with an R2 bucket bound (docs/production.md).
  const advice = run.maxOutputBytes === undefined ? "return a reference instead, or bind an R2 bucket as VALUES to raise it to 16 MiB" : "return a reference instead";
  const output = serializeOutput(`step "${step.name}" output`, value, run.storedBytes, run.maxOutputBytes, advice);
  const failedAttempts = stored?.failedAttempts;
  const record: StepRecord = {
    ...{ id: step.id, name: step.name, kind: step.kind, status: "completed", attempts: (stored?.attempts ?? 0) + 1, output: output.value, seq: run.nextSeq(), startedAt: run.startedAt, endedAt: run.endedAt },
    ...(failedAttempts ? { failedAttempts } : {}),
  };
  return { record, bytes: output.bytes };
}

/** One failed attempt of a step, as the executor saw it. */
export interface AttemptFailure {
  error: SerializedError;
  /** It fails the step whatever retries are left (a NonRetriableError, a limit, an app's StepFailed). */
  failsForGood: boolean;
  /** When the failure asked to be retried (a RetryAfterError, an app's retry-after), if it did. */
  retryAfter: number | undefined;
  startedAt: number;
  endedAt: number;
}

/**
 * A failed attempt of a step, as stored: failed for good (settling at `nextSeq()`) when the failure
 * says so or the function's retries are spent, else retrying at its retry time. Every attempt's
 * error is kept, oldest first, for the run's timeline.
 *
 * `minRetryDelayMs` is the one deliberate difference between executors: the remote executor
 * passes 1, as it finds a pending retry only ahead of the invocation's start (a retry due at once
 * would look like an app with nothing to do); the driver passes none, and a retry asked for a past
 * time is due at once.
 */
export function failedStep(
  step: StepIdentity,
  stored: StepRecord | undefined,
  failure: AttemptFailure,
  run: { retries: number; nextSeq: () => number; random: () => number; minRetryDelayMs?: number },
): StepRecord {
  const { error, startedAt, endedAt } = failure;
  const attempts = (stored?.attempts ?? 0) + 1;
  const failedAttempts = [...(stored?.failedAttempts ?? []), { error, startedAt, endedAt }];
  const base = { id: step.id, name: step.name, kind: step.kind, attempts, error, failedAttempts, startedAt, endedAt };
  if (isFinalFailure(attempts, run.retries, failure.failsForGood)) return { ...base, status: "failed", seq: run.nextSeq() };
  const wakeAt = retryTime(attempts, failure.retryAfter, endedAt, run.random);
  return { ...base, status: "retrying", wakeAt: run.minRetryDelayMs === undefined ? wakeAt : Math.max(wakeAt, endedAt + run.minRetryDelayMs) };
}

/** Logs a step's failed attempt that will be retried (`record` as failedStep stored it). */
export function logStepRetry(logger: Logger, record: StepRecord): void {
  logger.warn(`step "${record.name}" failed; retrying`, { step: record.name, attempt: record.attempts - 1, error: record.error!.message });
}

/** A sleep as stored: over at once when `wakeAt` has come (completed, settling at `nextSeq()`), else sleeping until then. */
export function sleepStep(step: Pick<StepRecord, "id" | "name">, wakeAt: number, now: number, nextSeq: () => number): StepRecord {
  const base = { id: step.id, name: step.name, kind: "sleep" as const, startedAt: now };
  if (wakeAt <= now) return { ...base, status: "completed", attempts: 1, output: null, wakeAt, seq: nextSeq(), endedAt: now };
  return { ...base, status: "sleeping", attempts: 0, wakeAt };
}

/** A wait or a child run as stored: waiting until its timeout for what `request` names (the host registers it, and resolves it from outside). */
export function waitingStep(step: StepIdentity, request: StepRequest, invocationStartedAt: number, now: number): StepRecord {
  // A replay settles a timed-out wait as woken by the first invocation that began at or after
  // its timeout, which must be one that began after the wait. A timeout at this invocation's
  // start (a timeout of 0 before the clock moved) would make it this one: replays would settle
  // the wait before the results stored since this invocation began, though they came first,
  // and the handler, asking for those first, would wait for ever. It times out 1 ms later.
  if (request.timeoutAt <= invocationStartedAt) request = { ...request, timeoutAt: invocationStartedAt + 1 };
  return { id: step.id, name: step.name, kind: step.kind, status: "waiting", attempts: 0, wakeAt: request.timeoutAt, request, startedAt: now };
}
