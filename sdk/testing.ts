/**
 * Runs handlers in memory the way a RunObject runs them, for tests: `FakeClock` (time moves when
 * told), `TestRun` (a run's stored steps, invoked across invocations, crashes included) and
 * `drive()`, which takes a handler to its end. Node only: turns of the event loop are setImmediate.
 */
import { setImmediate } from "node:timers";
import { executeRun, type Handler, type HandlerFailures, type RunHost, type RunInput, type RunOutcome, type StepRecord } from "./driver.ts";
import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { eventPayloadSchema, type EventPayload, type StoredEvent } from "./event.ts";
import type { PublishedMessage } from "./publish.ts";
import { highestSeq, type InvocationStart } from "./replay.ts";
import { hashStepId } from "./step.ts";
import type { Logger } from "./types.ts";
import type { Middleware } from "./middleware/middleware.ts";
import type { MiddlewareSetup } from "./middleware/stack.ts";
import { resolveInvoke, resolveWait, type InvokeResult } from "./wait.ts";
import { FakeClock } from "./fakeClock.ts";
import { InvocationLife, type CrashPoint, type InvocationOutcome } from "./invocationLife.ts";

export { FakeClock } from "./fakeClock.ts";
export type { CrashPoint, InvocationOutcome } from "./invocationLife.ts";

export interface TestRunOptions {
  runId?: string;
  /** The events that started the run (default: one `test/event`). */
  events?: StoredEvent[];
  /** The function's retries (default 4, as createFunction's). */
  retries?: number;
  /** The function's stepTimeout in ms (default 15 minutes, as createFunction's). */
  stepTimeoutMs?: number;
  logger?: Logger;
  clock?: FakeClock;
  /** Validates the events a step sends (default: the event schema; ids from the run and step). */
  prepareEvents?: RunHost["prepareEvents"];
  /**
   * Slow storage: how many turns of the event loop saving `record` takes (default 0: a save
   * commits at once, as SQLite in a Durable Object does). A crash in the meantime loses it.
   */
  saveTurns?: (record: StepRecord) => number;
  /** How long after a crash the next invocation begins (a RunObject's watchdog: 10 s). */
  restartAfterMs?: number;
  /** drive() gives up after this many invocations (default 100). */
  maxInvocations?: number;
  /** Kills some invocations (by their index, 0 for the first): see CrashPoint. */
  crash?: (invocation: number) => CrashPoint | undefined;
  /**
   * How many turns of the event loop an invocation may go without the driver moving before time
   * jumps to its next timer (a step timeout, or the handler's own stepTimeout). Keep it above the
   * longest chain of real macrotasks a step body awaits.
   */
  quietTurns?: number;
  /** Middleware classes the run's invocations use (of a function with id "test-fn"), or a full setup. */
  middleware?: readonly Middleware.Class[] | MiddlewareSetup;
  /** What runs an invocation in place of the driver (the worker's executor of remote functions); the handler is then unused. */
  execute?: (input: RunInput, host: RunHost) => Promise<RunOutcome>;
}

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A run in memory, kept the way a RunObject keeps it (stored steps, the events its steps sent,
 * every invocation's start, the handler's failures), invoked the way a RunObject invokes it.
 *
 * @example
 * const run = new TestRun(fn.handler, { retries: 2 });
 * const outcome = await run.drive();
 * expect(run.step("charge")).toMatchObject({ status: "completed" });
 */
export class TestRun<TData extends object = Record<string, unknown>> {
  readonly clock: FakeClock;
  /** Stored steps by hashed id: what survives a crash. */
  readonly steps = new Map<string, StepRecord>();
  /** Every step record saved, in order (the records themselves, as a RunObject's cache keeps them). */
  readonly saved: StepRecord[] = [];
  /** Every event a step sent, in the order they were stored. */
  readonly sentEvents: StoredEvent[] = [];
  /** Every message the handler published (step.publish), in order, each once however often the run replayed. */
  readonly published: (PublishedMessage & { at: number })[] = [];
  readonly starts: InvocationStart[];
  handlerFailures: HandlerFailures = { count: 0, unitSeq: 0 };
  /** Every invocation's outcome, in order. */
  readonly outcomes: InvocationOutcome[] = [];
  /** Set it to cancel the run: the driver sees it at its next step. */
  cancelled = false;
  /** An invocation began and did not record an outcome: the next one recovers. */
  private open = false;
  private readonly runId: string;
  private readonly events: StoredEvent[];

  constructor(
    private readonly handler: Handler<TData, unknown>,
    private readonly options: TestRunOptions = {},
  ) {
    this.clock = options.clock ?? new FakeClock();
    this.runId = options.runId ?? "test-run";
    this.events = options.events ?? [{ id: "01TESTEVENT", name: "test/event", data: {}, ts: this.clock.now() }];
    // A run that starts at once is created with its first invocation begun.
    this.starts = [{ at: this.clock.now(), seq: 0 }];
  }

  /** The stored step named `name` (as the handler wrote it, `:n` for repeats). */
  step(name: string): StepRecord | undefined {
    return this.steps.get(hashStepId(name));
  }

  /**
   * An event arrives for the wait step `name` (its condition `index`), as a RunObject's
   * resolveWait takes it: answers false when the step no longer waits for it. Resolved after the
   * latest invocation began, as a RunObject resolves it, so the next invocation settles it.
   */
  resolveWait(name: string, event: StoredEvent, index = 0): boolean {
    const step = this.step(name);
    return step ? this.resolved(resolveWait(step, index, event, this.resolutionTime())) : false;
  }

  /** The child run of the invoke step `name` ended with `result`; false when the step no longer waits. */
  resolveInvoke(name: string, result: InvokeResult): boolean {
    const step = this.step(name);
    return step ? this.resolved(resolveInvoke(step, result, this.resolutionTime())) : false;
  }

  private resolutionTime(): number {
    return Math.max(this.clock.now(), (this.starts.at(-1)?.at ?? 0) + 1);
  }

  private resolved(record: StepRecord | null): boolean {
    if (!record) return false;
    this.steps.set(record.id, record);
    // Time has moved to the resolution, as it has for a RunObject when the next invocation begins.
    if (record.status !== "waiting") this.clock.advanceTo(record.wakeAt!);
    return true;
  }

  /**
   * Runs one invocation now, as the RunObject's alarm does, and records its outcome; `crash`
   * kills it part way. Fake time jumps to the next timer whenever the invocation stops moving.
   */
  async invoke(crash?: CrashPoint): Promise<InvocationOutcome> {
    const index = this.outcomes.length;
    const recovering = this.open;
    // A recovering invocation goes on from the dead one's start: it settles what that one could have.
    if (index > 0 && !recovering) this.starts.push({ at: this.clock.now(), seq: highestSeq(this.steps.values()) });
    this.open = true;
    const life = new InvocationLife(this.clock, crash);
    const host: RunHost = {
      // A fresh isolate loads what is stored; the invocation's own saves go in as they commit.
      steps: new Map(this.steps),
      saveStep: (record, events) => {
        const nth = life.beforeSave();
        const commit = () => {
          life.beforeCommit();
          this.steps.set(record.id, record);
          this.saved.push(record);
          (host.steps as Map<string, StepRecord>).set(record.id, record);
          if (events) this.sentEvents.push(...events);
          if (record.kind === "publish") this.published.push({ ...(record.output as PublishedMessage), at: record.endedAt! });
          life.afterSave(nth);
        };
        const turns = this.options.saveTurns?.(record) ?? 0;
        if (turns === 0) return commit();
        return (async () => {
          for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
          commit();
        })();
      },
      prepareEvents: this.options.prepareEvents ?? ((events, idAt) => prepareEvents(events, idAt, this.clock.now())),
      isCancelled: () => this.cancelled,
      clock: life.clock,
    };
    const input: RunInput = {
      runId: this.runId,
      events: this.events,
      handlerFailures: this.handlerFailures,
      retries: this.options.retries ?? 4,
      stepTimeoutMs: this.options.stepTimeoutMs ?? 15 * 60_000,
      logger: this.options.logger ?? silentLogger,
      ...(this.options.middleware ? { middleware: middlewareSetup(this.options.middleware) } : {}),
      starts: [...this.starts],
      recovering,
    };
    const run = this.options.execute ? this.options.execute(input, host) : executeRun(this.handler, input, host);
    const outcome = await life.outlive(run, this.options.quietTurns ?? 100);
    this.outcomes.push(outcome);
    if (outcome.type === "crashed") return outcome;
    this.open = false;
    if (outcome.type === "retry") this.handlerFailures = outcome.handlerFailures;
    return outcome;
  }

  /**
   * Invokes the run until it ends, moving time as the RunObject's alarm would: to a suspended
   * run's wake time, to a retry's time, or past the watchdog after a crash. Returns the final outcome.
   */
  async drive(): Promise<RunOutcome> {
    const max = this.options.maxInvocations ?? 100;
    while (this.outcomes.length < max) {
      const outcome = await this.invoke(this.options.crash?.(this.outcomes.length));
      if (outcome.type === "crashed") this.clock.advance(this.options.restartAfterMs ?? 10_000);
      else if (outcome.type === "suspended" || outcome.type === "retry") this.clock.advanceTo(outcome.wakeAt);
      else return outcome;
    }
    throw new Error(`the run did not end within ${max} invocations`);
  }
}

/**
 * Runs a handler to its end in memory, across invocations, the way a RunObject would.
 *
 * @example
 * const { outcome, run } = await drive(async ({ step }) => step.run("a", () => 1));
 * // outcome: { type: "completed", output: 1 }
 */
export async function drive<TData extends object>(
  handler: Handler<TData, unknown>,
  options?: TestRunOptions,
): Promise<{ outcome: RunOutcome; run: TestRun<TData> }> {
  const run = new TestRun<TData>(handler, options);
  return { outcome: await run.drive(), run };
}

function middlewareSetup(given: readonly Middleware.Class[] | MiddlewareSetup): MiddlewareSetup {
  if (!Array.isArray(given)) return given as MiddlewareSetup;
  return { classes: given, client: null, fn: { id: () => "test-fn", name: "test-fn", opts: { id: "test-fn" } } };
}

/** What the test host checks of a step's events: the event schema, an id and a timestamp. */
function prepareEvents(events: EventPayload[], idAt: (position: number) => string, now: number): StoredEvent[] {
  return events.map((event, position) => {
    const parsed = eventPayloadSchema.safeParse(event);
    if (!parsed.success) throw new NonRetriableError(`step.sendEvent: invalid event ${position}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
    const { id, ts, user, v, ...rest } = parsed.data;
    return { ...rest, id: id ?? idAt(position), ts: ts ?? now, ...(user ? { user } : {}), ...(v ? { v } : {}) };
  });
}
