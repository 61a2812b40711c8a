import { highestSeq, replayOrder } from "../../sdk/replay.ts";
import { completedStep, failedStep, handlerFailure, invocationStart, isRetryAhead, isRetryDue, logStepRetry, memoizedResult, sleepStep, storedBytesOf, unitFailures, waitingStep, type StepIdentity } from "../../sdk/runRules.ts";
import { completedOutcome, type RunHost, type RunInput, type RunOutcome, type StepKind, type StepRecord } from "../../sdk/run.ts";
import { MAX_STEPS_PER_RUN } from "../../sdk/step.ts";
import { serializeError, type SerializedError } from "../../sdk/types.ts";
import { buildInvokeRequest, buildWaitRequest, type StepRequest } from "../../sdk/wait.ts";
import { toMilliseconds } from "../../sdk/duration.ts";
import { findFunction } from "../registry.ts";
import type { RemoteFunction } from "./function.ts";
import { callApp, errorOf, retryAfterAt, type CallAnswer, type CallBody, type RequestSigner } from "./transport.ts";
import { definedOnly, isOpName, type Op, type OpName } from "./wire.ts";
import { z } from "zod";

// A run of a remote function (an app on the official `inngest` SDK), executed as Inngest's
// executor does it (protocol §3, §6): call the app with the memoized steps, act on the ops it
// answers (store a step's result, run a planned step, sleep, wait, invoke), call again, until it
// says the run is done. It stores the same step records as the in-process driver, so the RunObject
// treats both alike: sleeps, waits, child runs, retries, cancellation, the outbox.

/** A failed step's error when the app sent none that reads as one. */
const STEP_ERROR_FALLBACK = "the app reported the step failed without an error";

/** Calls to the app in one invocation before it ends with an error (an app that never moves on). */
const MAX_CALLS_PER_INVOCATION = 2 * MAX_STEPS_PER_RUN;

/** How a call to the app is made: the real one, signed or not (tests give the same function). */
export type AppCaller = (url: string, stepId: string, body: CallBody, sign?: RequestSigner) => Promise<CallAnswer>;

/**
 * Where the SDK's checkpoints of a call in progress arrive (`POST /v1/checkpoint/:runId/async`
 * reaches the RunObject, which hands them to the invocation that opened the call's id).
 */
export interface CheckpointBoard {
  open(callId: string, accept: (ops: Op[]) => Promise<void>): void;
  close(callId: string): void;
}

export interface RemoteRunOptions {
  call?: AppCaller;
  sign?: RequestSigner;
  /** Offer the SDK checkpointing (v4's default): it runs consecutive steps in one call and reports each here. */
  checkpoints?: CheckpointBoard;
  /** What makes the request of a `step.fetch` (the `Gateway` op, which the executor makes for the app): `fetch` by default. */
  fetch?: typeof fetch;
}

/**
 * Runs one invocation of a remote function against its stored steps and answers how it ended,
 * as `executeRun` does for a local handler. It rejects only if the host fails to store a step.
 *
 * @example
 * const outcome = await executeRemoteRun(fn, input, host);
 */
/** Where and when an op arrived, for its handler. */
interface OpArrival {
  /** The step as stored before this op, if it was. */
  stored: StepRecord | undefined;
  now: number;
  /** When the request that ran the op's step began (now for an op found otherwise). */
  startedAt: number;
  /** When the answer asked a failed step to be retried (its retry-after), if it did. */
  retryAt: number | undefined;
}

type OpHandler<K extends OpName> = (op: Op & { op: K }, at: OpArrival) => Promise<RunOutcome | undefined> | RunOutcome | undefined;

export function executeRemoteRun(fn: RemoteFunction, input: RunInput, host: RunHost, options: RemoteRunOptions = {}): Promise<RunOutcome> {
  return new RemoteInvocation(fn, input, host, options).execute();
}

class RemoteInvocation {
  private readonly steps: Map<string, StepRecord>;
  private readonly startedAt: number;
  private seq: number;
  private readonly initialSeq: number;
  private storedBytes = 0;
  /** Steps the app planned, to run one request each; a step is planned once (protocol §6.2). */
  private planned = new Map<string, Op>();
  /** Echoed to the app as it asked (`x-inngest-req-version`); -1 lets the SDK choose. */
  private version = -1;

  private readonly call: AppCaller;
  private calls = 0;

  constructor(
    private readonly fn: RemoteFunction,
    private readonly input: RunInput,
    private readonly host: RunHost,
    private readonly options: RemoteRunOptions,
  ) {
    this.call = options.call ?? callApp;
    this.steps = new Map(host.steps);
    this.startedAt = invocationStart(input, host.clock);
    this.seq = this.initialSeq = highestSeq(this.steps.values());
    this.storedBytes = storedBytesOf(this.steps.values());
  }

  async execute(): Promise<RunOutcome> {
    await this.host.ready;
    // Steps whose retry is due run first, as the steps they are (their attempt counted on); a
    // step.fetch is the executor's to make again, when the app asks for it.
    for (const step of this.steps.values()) {
      if (isRetryDue(step, this.startedAt) && step.kind !== "fetch") this.planned.set(step.id, { id: step.id, op: "StepPlanned", userland: { id: step.name } });
    }
    for (let calls = 0; calls < MAX_CALLS_PER_INVOCATION; calls++) {
      if (this.host.isCancelled()) return { type: "cancelled" };
      if (this.planned.size > 0) {
        this.progressed = false;
        const ended = await this.runPlanned();
        if (ended) return ended;
        // Nothing settled (the steps failed and wait for their retries): nothing new to discover before then.
        const wakeAt = this.progressed ? undefined : this.nextWake();
        if (wakeAt !== undefined) return { type: "suspended", wakeAt };
        continue;
      }
      // The SDK runs a lone new step in the discovery call itself, at the call's attempt: not while the
      // handler's code is being retried (its attempt is not the step's), nor while a step waits for its
      // retry (the SDK would run that one at once). It then plans them, and each runs with its own attempt.
      const immediate = this.handlerAttempt() === 0 && !this.retryPending();
      const answer = await this.request("step", this.handlerAttempt(), !immediate);
      // Steps the app checkpointed during the call are behind it: only what it answered says whether to call again.
      this.progressed = false;
      const ended = await this.onAnswer(answer, undefined);
      if (ended) return ended;
      if (this.planned.size > 0 || this.progressed) continue;
      const wakeAt = this.nextWake();
      if (wakeAt !== undefined) return { type: "suspended", wakeAt };
      return this.handlerFailed({ name: "ProtocolError", message: "the app answered with nothing to do while no step of the run was pending" }, undefined);
    }
    return this.handlerFailed({ name: "ProtocolError", message: `the app was called ${MAX_CALLS_PER_INVOCATION} times in one invocation without finishing` }, undefined);
  }

  /** Set when an answer stored a result: the app is asked what comes next. */
  private progressed = false;

  /**
   * When the run is due again, from its stored steps: the earliest retry, sleep end, wait or child
   * run timeout still ahead of this invocation, or a wait resolved since it began.
   */
  private nextWake(): number | undefined {
    let next: number | undefined;
    for (const step of this.steps.values()) {
      const ahead = step.wakeAt !== undefined && step.wakeAt > this.startedAt;
      const pending = step.status === "retrying" || step.status === "sleeping" || step.status === "waiting" || step.seq === undefined;
      if (ahead && pending) next = Math.min(next ?? Infinity, step.wakeAt!);
    }
    return next;
  }

  /** An app's `retry-after`, on the run's clock. */
  private retryAt(header: string | undefined): number | undefined {
    return retryAfterAt(header, this.host.clock.now());
  }

  /** True while a step waits for its retry. */
  private retryPending(): boolean {
    const now = this.host.clock.now();
    for (const step of this.steps.values()) if (isRetryAhead(step, now)) return true;
    return false;
  }

  /** Runs every planned step, each in its own request (at once when there are several: a parallel group), then rediscovers. */
  private async runPlanned(): Promise<RunOutcome | undefined> {
    const ops = [...this.planned.values()];
    this.planned.clear();
    const parallel = ops.length > 1;
    const ends = await Promise.all(
      ops.map(async (op) => {
        const startedAt = this.host.clock.now();
        const answer = await this.request(op.id, this.steps.get(op.id)?.attempts ?? 0, parallel);
        // A failure of the call itself is a failed attempt of the step it ran.
        if (answer.type === "error") return void (await this.stepFailed(op, answer.error, false, startedAt, this.retryAt(answer.retryAfter)));
        return this.onAnswer(answer, { op, startedAt });
      }),
    );
    return ends.find((end) => end !== undefined);
  }

  private async request(stepId: string, attempt: number, disableImmediateExecution: boolean): Promise<CallAnswer> {
    const memo = this.memo();
    // Checkpointing only on a discovery that may run steps (protocol §6.4): the SDK needs both ids.
    const board = stepId === "step" && !disableImmediateExecution ? this.options.checkpoints : undefined;
    const callId = `${this.input.runId}:${this.startedAt}:${++this.calls}`;
    const body: CallBody = {
      event: this.input.events[0]!,
      events: this.input.events,
      steps: memo.steps,
      version: this.version,
      ctx: {
        run_id: this.input.runId,
        attempt,
        max_attempts: this.input.retries + 1,
        disable_immediate_execution: disableImmediateExecution,
        use_api: false,
        stack: { stack: memo.stack, current: memo.stack.length },
        ...(board ? { fn_id: this.fn.id, qi_id: callId } : {}),
      },
    };
    board?.open(callId, (ops) => this.onCheckpoint(ops));
    try {
      const answer = await this.call(this.fn.remote.url, stepId, body, this.options.sign);
      if (answer.type === "ops" && answer.version !== undefined) this.version = answer.version;
      return answer;
    } finally {
      board?.close(callId);
    }
  }

  /** Steps the app ran during a call and reports before answering: stored as its answer's ops would be. */
  private async onCheckpoint(ops: Op[]): Promise<void> {
    for (const op of ops) {
      // A run ends by the call's answer, not by a checkpoint.
      if (op.op === "RunComplete") continue;
      await this.onOp(op, this.host.clock.now(), undefined);
    }
  }

  /** The settled steps as the app's memo, in the order they settled (the stack). */
  private memo(): { steps: CallBody["steps"]; stack: string[] } {
    const stack = replayOrder(this.steps.values(), this.input.starts);
    const steps: CallBody["steps"] = {};
    for (const id of stack) {
      const result = memoizedResult(this.steps.get(id)!);
      steps[id] = "error" in result ? result : { data: result.data ?? null };
    }
    return { steps, stack };
  }

  /** Acts on an answer; returns the run's outcome when the answer ends the invocation. `step` is the planned step the request ran. */
  private async onAnswer(answer: CallAnswer, step: { op: Op; startedAt: number } | undefined): Promise<RunOutcome | undefined> {
    switch (answer.type) {
      case "done":
        return completedOutcome(answer.output);
      case "failed":
        return { type: "failed", error: answer.error };
      case "error":
        return this.handlerFailed(answer.error, this.retryAt(answer.retryAfter));
      case "ops":
        for (const op of answer.ops) {
          const ended = await this.onOp(op, step?.op.id === op.id ? step.startedAt : this.host.clock.now(), this.retryAt(answer.retryAfter));
          if (ended) return ended;
        }
        return undefined;
    }
  }

  private async onOp(op: Op, startedAt: number, retryAt: number | undefined): Promise<RunOutcome | undefined> {
    const stored = this.steps.get(op.id);
    if (stored && (stored.status === "completed" || stored.status === "failed") && op.op !== "RunComplete") {
      // Resolved (a wait, a child run) after this invocation began: the next one settles it (nextWake). Otherwise reported twice: nothing new.
      return undefined;
    }
    if (!isOpName(op.op)) return { type: "failed", error: { name: "UnsupportedOpError", message: `the app asked for ${op.op} (step "${nameOf(op)}"), which Stepflare does not support` } };
    return this.dispatch(op as Op & { op: OpName }, { stored, now: this.host.clock.now(), startedAt, retryAt });
  }

  private dispatch<K extends OpName>(op: Op & { op: K }, at: OpArrival): Promise<RunOutcome | undefined> | RunOutcome | undefined {
    return this.opHandlers[op.op](op, at);
  }

  /** One handler per op the protocol names: an op without one does not compile. */
  private readonly opHandlers: { [K in OpName]: OpHandler<K> } = {
    StepRun: (op, at) => this.stepCompleted(op, at.startedAt),
    Step: (op, at) => this.stepCompleted(op, at.startedAt),
    StepError: (op, at) => this.stepFailed(op, errorOf(op.error, STEP_ERROR_FALLBACK), false, at.startedAt, at.retryAt),
    StepFailed: (op, at) => this.stepFailed(op, errorOf(op.error, STEP_ERROR_FALLBACK), true, at.startedAt, undefined),
    StepPlanned: (op, { stored, now }) => {
      if (!isRetryAhead(stored, now)) this.planned.set(op.id, op);
      return undefined;
    },
    Sleep: (op, { stored, now }) => this.sleep(op, stored, now),
    WaitForEvent: (op, { stored, now }) =>
      this.wait(op, stored, "waitForEvent", () => buildWaitRequest(definedOnly({ event: op.name, timeout: durationOf(op.opts?.timeout) ?? "1y", if: op.opts?.if }), now)),
    InvokeFunction: (op, { stored, now }) =>
      this.wait(op, stored, "invoke", () => {
        const payload = (op.opts?.payload ?? {}) as { data?: Record<string, unknown> };
        return buildInvokeRequest(definedOnly({ function: this.invokedFunctionId(String(op.opts?.function_id ?? "")), data: payload.data ?? {}, timeout: durationOf(op.opts?.timeout) || undefined }), now);
      }),
    RunComplete: (op) => completedOutcome(op.data),
    DiscoveryRequest: () => {
      this.progressed = true;
      return undefined;
    },
    Gateway: (op, { stored, now }) => (isRetryAhead(stored, now) ? undefined : this.gatewayFetch(op, now)),
    // Lazy ops the SDK may send beside others: nothing for the executor to do.
    DeferAdd: () => undefined,
    DeferAbort: () => undefined,
  };

  /**
   * The function an `InvokeFunction` names. The SDK writes `<app>-<function>`; a function of this
   * Worker has no app, so `referenceFunction({ functionId })` from an app reaches it by its id after the calling app's prefix.
   */
  private invokedFunctionId(id: string): string {
    if (findFunction(id)) return id;
    const prefix = `${this.fn.remote.appId}-`;
    return id.startsWith(prefix) && findFunction(id.slice(prefix.length)) ? id.slice(prefix.length) : id;
  }

  /**
   * `step.fetch` in an app: the executor makes the request and stores the response as the step's
   * result, `{ status_code, headers, body }`, which the SDK turns back into a Response. A request
   * that fails (no answer) is a failed attempt; any HTTP status is a result.
   */
  private async gatewayFetch(op: Op, startedAt: number): Promise<RunOutcome | undefined> {
    const request = gatewayRequestSchema.safeParse(op.opts ?? {});
    if (!request.success) return this.stepFailed(op, { name: "ProtocolError", message: `step "${nameOf(op)}": the Gateway op names no URL to fetch` }, true, startedAt, undefined);
    const { url, method, headers, body } = request.data;
    try {
      const response = await (this.options.fetch ?? fetch)(url, { method, headers, ...(body === undefined || method === "GET" || method === "HEAD" ? {} : { body }) });
      const data = { status_code: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
      return this.stepCompleted({ ...op, data }, startedAt);
    } catch (err) {
      return this.stepFailed(op, serializeError(err), false, startedAt, undefined);
    }
  }

  private async stepCompleted(op: Op, startedAt: number): Promise<RunOutcome | undefined> {
    let completed;
    try {
      completed = completedStep(stepOf(op), this.steps.get(op.id), op.data, { storedBytes: this.storedBytes, nextSeq: () => ++this.seq, startedAt, endedAt: this.host.clock.now() });
    } catch (err) {
      return this.stepFailed(op, serializeError(err), true, startedAt, undefined);
    }
    this.storedBytes += completed.bytes;
    await this.save(completed.record);
    return undefined;
  }

  /** A failed attempt: retried after a backoff (or the app's `retry-after`) until the function's retries are spent, then failed for good. */
  private async stepFailed(op: Op, error: SerializedError, final: boolean, startedAt: number, retryAt: number | undefined): Promise<RunOutcome | undefined> {
    const failure = { error, failsForGood: final, retryAfter: retryAt, startedAt, endedAt: this.host.clock.now() };
    // A retry at least 1 ms ahead: nextWake finds a pending retry only ahead of the invocation's start.
    const run = { retries: this.input.retries, nextSeq: () => ++this.seq, random: () => this.host.clock.random(), minRetryDelayMs: 1 };
    const record = failedStep(stepOf(op), this.steps.get(op.id), failure, run);
    if (record.status === "failed") return void (await this.save(record));
    logStepRetry(this.input.logger, record);
    await this.save(record, false);
    return undefined;
  }

  private async sleep(op: Op, stored: StepRecord | undefined, now: number): Promise<RunOutcome | undefined> {
    if (stored?.status === "sleeping") return undefined;
    let wakeAt: number;
    try {
      wakeAt = sleepEnd(op.name ?? "", now);
    } catch (err) {
      return { type: "failed", error: serializeError(err) };
    }
    const record = sleepStep({ id: op.id, name: nameOf(op) }, wakeAt, now, () => ++this.seq);
    await this.save(record, record.status === "completed");
    return undefined;
  }

  /** A wait or child run: stored as waiting (the RunObject registers it), parked until its timeout or its resolution. */
  private async wait(op: Op, stored: StepRecord | undefined, kind: StepKind, build: () => StepRequest): Promise<RunOutcome | undefined> {
    if (stored?.status === "waiting") return undefined;
    let request: StepRequest;
    try {
      request = build();
    } catch (err) {
      return { type: "failed", error: serializeError(err) };
    }
    await this.save(waitingStep({ id: op.id, name: nameOf(op), kind }, request, this.startedAt, this.host.clock.now()), false);
    return undefined;
  }

  private async save(record: StepRecord, settles = true): Promise<void> {
    if (this.host.isCancelled()) return;
    // Set first: a checkpoint and an answer reporting the same step store it once.
    this.steps.set(record.id, record);
    await this.host.saveStep(record);
    if (settles) this.progressed = true;
  }

  /** Attempt of the handler's code since the last settled step (Inngest counts a discovery as a unit). */
  private handlerAttempt(): number {
    return unitFailures(this.input.handlerFailures, this.seq);
  }

  /** The app failed outside a step (or could not be reached): the discovery is retried as a local handler's code would be. */
  private handlerFailed(error: SerializedError, retryAt: number | undefined): RunOutcome {
    // Never final by itself: an app reports a failure that must not be retried as an answer of its own ("failed").
    const run = { handlerFailures: this.input.handlerFailures, seq: this.seq, retries: this.input.retries, retryAfter: retryAt, now: this.host.clock.now(), random: () => this.host.clock.random() };
    return handlerFailure(error, false, run);
  }
}

/** An op's duration option as the SDK writes it (`""` for 0), or undefined. */
function durationOf(value: unknown): string | number | undefined {
  if (value === "") return 0;
  return typeof value === "string" || typeof value === "number" ? value : undefined;
}

/** A step's name as the app's code wrote it. */
function nameOf(op: Op): string {
  return op.userland?.id ?? op.displayName ?? op.name ?? op.id;
}

/** The step an op names, as the executor stores it. */
function stepOf(op: Op): StepIdentity {
  return { id: op.id, name: nameOf(op), kind: kindOf(op) };
}

function kindOf(op: Op): StepKind {
  if (op.op === "Gateway") return "fetch";
  return op.opts?.type === "step.sendEvent" ? "sendEvent" : "run";
}

/** A `Gateway` op's request, as the SDK's `step.fetch` writes it. */
const gatewayRequestSchema = z.object({
  url: z.string().url(),
  method: z.string().default("GET"),
  headers: z.record(z.string(), z.string()).default({}),
  body: z.string().optional(),
});


/** A Sleep op's `name`: a duration ("1d2h3m4s"; the SDK writes a sleep of 0 as "") or an ISO time. */
function sleepEnd(name: string, now: number): number {
  if (name === "") return now;
  if (/^\d{4}-\d{2}-\d{2}T/.test(name)) {
    const at = Date.parse(name);
    if (!Number.isNaN(at)) return at;
  }
  return now + toMilliseconds(name);
}

