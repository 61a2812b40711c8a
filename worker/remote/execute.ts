import { completedOutcome, type RunHost, type RunInput, type RunOutcome } from "../../sdk/run.ts";
import { isRetryDue } from "../../sdk/runRules.ts";
import { MAX_STEPS_PER_RUN } from "../../sdk/step.ts";
import { CALL_TIMEOUT_MS, deadlineOn } from "./bounds.ts";
import { acceptCheckpoint, type CheckpointBoard, type CheckpointVerdict } from "./checkpoints.ts";
import type { RemoteFunction } from "./function.ts";
import { actOnOp, stepOf, type OpScope } from "./ops.ts";
import { RemoteSteps } from "./remoteSteps.ts";
import { callApp, retryAfterAt, type AppSigner, type CallAnswer, type CallBody } from "./transport.ts";
import type { Op } from "./wire.ts";

// A run of a remote function (an app on the official `inngest` SDK), executed as Inngest's
// executor does it (protocol §3, §6): call the app with the memoized steps, act on the ops it
// answers (store a step's result, run a planned step, sleep, wait, invoke), call again, until it
// says the run is done. It stores the same step records as the in-process driver, so the RunObject
// treats both alike: sleeps, waits, child runs, retries, cancellation, the outbox. Here lives the
// call loop; the ops' handlers are in ops.ts, the steps as stored in remoteSteps.ts.

/** Calls to the app in one invocation before it ends with an error (an app that never moves on). */
const MAX_CALLS_PER_INVOCATION = 2 * MAX_STEPS_PER_RUN;

export interface RemoteRunOptions {
  /** Signs the calls and checks the answers (outside dev mode). */
  sign?: AppSigner | undefined;
  /** What carries the calls to the app: `fetch` by default (tests give the SDK's handler in process). */
  transport?: typeof fetch;
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
export async function executeRemoteRun(fn: RemoteFunction, input: RunInput, host: RunHost, options: RemoteRunOptions = {}): Promise<RunOutcome> {
  const invocation = new RemoteInvocation(fn, input, host, options);
  try {
    return await invocation.execute();
  } finally {
    // A race's losers may still be out: what they bring after the outcome is not stored.
    invocation.close();
  }
}

/** An answer as the invocation takes it: the app's, or "halted" when a checkpoint stopped the SDK and its answer says nothing more. */
type Answer = CallAnswer | { type: "halted"; verdict: CheckpointVerdict };

class RemoteInvocation {
  private readonly steps: RemoteSteps;
  /** What the ops' handlers act on. */
  private readonly scope: OpScope;
  /** Steps the app planned, to run one request each; a step is planned once (protocol §6.2). */
  private planned = new Map<string, Op>();
  /** Planned steps whose request is out, each with what it came to: a race group moves on while its losers run. */
  private inFlight = new Map<string, Promise<RunOutcome | undefined>>();
  /** How many planned steps' requests have come back: one that lands during a discovery is news the app did not have. */
  private landed = 0;
  /** Echoed to the app as it asked (`x-inngest-req-version`); -1 lets the SDK choose. */
  private version = -1;
  private calls = 0;

  constructor(
    private readonly fn: RemoteFunction,
    private readonly input: RunInput,
    private readonly host: RunHost,
    private readonly options: RemoteRunOptions,
  ) {
    this.steps = new RemoteSteps(input, host);
    this.scope = {
      steps: this.steps,
      // A step whose request is out is not planned again when a discovery reports it.
      plan: (op) => void (this.inFlight.has(op.id) || this.planned.set(op.id, op)),
      fn,
      fetch: options.fetch ?? fetch,
    };
  }

  close(): void {
    this.steps.close();
  }

  async execute(): Promise<RunOutcome> {
    const outcome = await this.loop();
    if (outcome.type !== "retry" && outcome.type !== "suspended") return outcome;
    // The run goes on in a later invocation: steps still out (a race's losers) are waited for, since a
    // result dropped here would have its body run again.
    while (this.inFlight.size > 0) {
      const ended = await Promise.race(this.inFlight.values());
      if (ended) return ended;
    }
    return outcome;
  }

  private async loop(): Promise<RunOutcome> {
    await this.host.ready;
    const steps = this.steps;
    // Steps whose retry is due run first, as the steps they are (their attempt counted on); a
    // step.fetch is the executor's to make again, when the app asks for it.
    for (const step of steps.values()) {
      if (isRetryDue(step, steps.startedAt) && step.kind !== "fetch") this.planned.set(step.id, { id: step.id, op: "StepPlanned", userland: { id: step.name } });
    }
    for (let calls = 0; calls < MAX_CALLS_PER_INVOCATION; calls++) {
      if (this.host.isCancelled()) return { type: "cancelled" };
      if (this.planned.size > 0) {
        steps.progressed = false;
        const ended = await this.runPlanned();
        if (ended) return ended;
        if (steps.progressed) continue;
        // Nothing settled (the steps failed and wait for their retries): nothing new to discover before then.
        const waited = await this.nextSettled();
        if (waited) return waited;
        if (steps.progressed) continue;
        const wakeAt = steps.nextWake();
        if (wakeAt !== undefined) return { type: "suspended", wakeAt };
        continue;
      }
      // The SDK runs a lone new step in the discovery call itself, at the call's attempt: not while the
      // handler's code is being retried (its attempt is not the step's), nor while a step waits for its
      // retry (the SDK would run that one at once), nor while steps are out (a race's losers). It then
      // plans them, and each runs with its own attempt.
      const immediate = steps.handlerAttempt() === 0 && !steps.retryPending() && this.inFlight.size === 0;
      const landedBefore = this.landed;
      const answer = await this.request("step", steps.handlerAttempt(), !immediate);
      // Steps the app checkpointed during the call are behind it: only what it answered says whether to call again.
      steps.progressed = false;
      const ended = await this.onAnswer(answer, undefined);
      if (ended) return ended;
      // A step out landed during the call: the app answered without it, and is asked again.
      if (this.planned.size > 0 || steps.progressed || this.landed !== landedBefore) continue;
      // Steps still out: what they come to is the next thing to learn.
      if (this.inFlight.size > 0) {
        const waited = await this.nextSettled();
        if (waited) return waited;
        continue;
      }
      const wakeAt = steps.nextWake();
      if (wakeAt !== undefined) return { type: "suspended", wakeAt };
      return steps.handlerFailed({ name: "ProtocolError", message: "the app answered with nothing to do while no step of the run was pending" }, undefined);
    }
    return steps.handlerFailed({ name: "ProtocolError", message: `the app was called ${MAX_CALLS_PER_INVOCATION} times in one invocation without finishing` }, undefined);
  }

  /** An app's `retry-after`, on the run's clock. */
  private retryAt(header: string | undefined): number | undefined {
    return retryAfterAt(header, this.host.clock.now());
  }

  /**
   * Sends every planned step its own request (at once when there are several: a parallel group),
   * then waits for all of them, or, for a race group (`parallelMode: "race"`), for the first that
   * settles: the run moves on with the winner while the others run on (protocol §6.2).
   */
  private async runPlanned(): Promise<RunOutcome | undefined> {
    const ops = [...this.planned.values()].filter((op) => !this.inFlight.has(op.id));
    this.planned.clear();
    const parallel = ops.length + this.inFlight.size > 1;
    const started = ops.map((op) => this.start(op, parallel));
    if (ops.some((op) => op.opts?.parallelMode === "race")) return this.nextSettled();
    const ends = await Promise.all(started);
    return ends.find((end) => end !== undefined);
  }

  /** Sends a planned step's request and acts on its answer, keeping it among the steps out until then. */
  private start(op: Op, parallel: boolean): Promise<RunOutcome | undefined> {
    const settled = (async () => {
      const startedAt = this.host.clock.now();
      const answer = await this.request(op.id, this.steps.get(op.id)?.attempts ?? 0, parallel);
      // A failure of the call itself is a failed attempt of the step it ran.
      if (answer.type === "error") return void (await this.steps.failed(stepOf(op), answer.error, false, startedAt, this.retryAt(answer.retryAfter)));
      return this.onAnswer(answer, { op, startedAt });
    })().finally(() => {
      this.inFlight.delete(op.id);
      this.landed++;
    });
    // Awaited by whoever waits for it; a loser nobody waits for must not fail unheard.
    settled.catch(() => undefined);
    this.inFlight.set(op.id, settled);
    return settled;
  }

  /** Waits for steps out until one ends the invocation or moves the run on, or none is left. */
  private async nextSettled(): Promise<RunOutcome | undefined> {
    while (this.inFlight.size > 0) {
      const ended = await Promise.race(this.inFlight.values());
      if (ended) return ended;
      if (this.steps.progressed) return undefined;
    }
    return undefined;
  }

  private async request(stepId: string, attempt: number, disableImmediateExecution: boolean): Promise<Answer> {
    const memo = this.steps.memo();
    // Checkpointing only on a discovery that may run steps (protocol §6.4): the SDK needs both ids.
    const board = stepId === "step" && !disableImmediateExecution ? this.options.checkpoints : undefined;
    const callId = `${this.input.runId}:${this.steps.startedAt}:${++this.calls}`;
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
    // A checkpoint not taken stops the SDK; what it answers then is its stopping, not the run's news.
    let halted: CheckpointVerdict | undefined;
    board?.open(callId, async (ops) => {
      if (halted) return halted;
      const verdict = await acceptCheckpoint(ops, {
        act: (op) => actOnOp(op, this.scope, this.host.clock.now(), undefined),
        stored: (id) => this.steps.get(id),
        isCancelled: () => this.host.isCancelled(),
      });
      if (verdict.type !== "stored") halted = verdict;
      return verdict;
    });
    const deadline = deadlineOn(this.host.clock, CALL_TIMEOUT_MS, "the app did not answer", "one call");
    try {
      const { sign: signer, transport } = this.options;
      const answer = await callApp(this.fn.remote.url, stepId, body, { signal: deadline.signal, ...(signer ? { signer } : {}), ...(transport ? { fetch: transport } : {}) });
      if (halted) return { type: "halted", verdict: halted };
      if (answer.type === "ops" && answer.version !== undefined) this.version = answer.version;
      return answer;
    } finally {
      deadline.clear();
      board?.close(callId);
    }
  }

  /** Acts on an answer; returns the run's outcome when the answer ends the invocation. `step` is the planned step the request ran. */
  private async onAnswer(answer: Answer, step: { op: Op; startedAt: number } | undefined): Promise<RunOutcome | undefined> {
    switch (answer.type) {
      case "done":
        return completedOutcome(answer.output);
      case "failed":
        return { type: "failed", error: answer.error };
      case "error":
        return this.steps.handlerFailed(answer.error, this.retryAt(answer.retryAfter));
      case "halted":
        // A refused step is stored failed: the app learns it on the next call. A cancel is seen at the loop's top.
        this.steps.progressed = true;
        return undefined;
      case "ops":
        for (const op of answer.ops) {
          const ended = await actOnOp(op, this.scope, step?.op.id === op.id ? step.startedAt : this.host.clock.now(), this.retryAt(answer.retryAfter));
          if (ended) return ended;
        }
        return undefined;
    }
  }
}
