/**
 * Runs handlers in memory the way a RunObject runs them, for tests: `FakeClock` (time moves when
 * told), `TestRun` (a run's stored steps, invoked across invocations, crashes included) and
 * `drive()`, which takes a handler to its end. Node only: turns of the event loop are setImmediate.
 */
import { setImmediate } from "node:timers";
import type { Clock, TimerHandle } from "./clock.ts";
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

/**
 * A Clock whose time moves only when told to: timers fire when `advanceTo` passes their time, and
 * `yield()` is a real macrotask (setImmediate), so the driver's turns take no time at all.
 *
 * @example
 * const clock = new FakeClock(Date.UTC(2026, 0, 1));
 * clock.setTimer(() => console.log("fired"), 1000);
 * clock.advance(1000); // "fired"
 */
export class FakeClock implements Clock {
  private time: number;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();
  private nextTimer = 1;
  /** How many times anything yielded through this clock: a count that moves while the driver does. */
  yields = 0;

  /** `random` feeds retry jitter: a constant (0.5 by default) makes backoffs exact. */
  constructor(
    start: number = Date.UTC(2026, 0, 1),
    private readonly randomSource: () => number = () => 0.5,
  ) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(callback: () => void, ms: number): TimerHandle {
    const handle = this.nextTimer++;
    this.timers.set(handle, { at: this.time + Math.max(0, ms), callback });
    return handle;
  }

  clearTimer(handle: TimerHandle | undefined): void {
    if (typeof handle === "number") this.timers.delete(handle);
  }

  yield(): Promise<void> {
    this.yields++;
    return new Promise((resolve) => setImmediate(resolve));
  }

  random(): number {
    return this.randomSource();
  }

  /** The time of the earliest timer still set, if any. */
  nextTimerAt(): number | undefined {
    let earliest: number | undefined;
    for (const timer of this.timers.values()) if (earliest === undefined || timer.at < earliest) earliest = timer.at;
    return earliest;
  }

  /** Moves time forward to `time` (never back), firing the timers due by then, earliest first. */
  advanceTo(time: number): void {
    for (;;) {
      let due: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= time && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].callback();
    }
    this.time = Math.max(this.time, time);
  }

  advance(ms: number): void {
    this.advanceTo(this.time + ms);
  }
}

/**
 * Where an invocation dies, as an isolate dies: at its `atSave`-th saveStep (1-based; that save
 * is lost unless `keep`), or at its `atYield`-th turn of the event loop. What it had not stored
 * is lost, and the next invocation runs with `recovering: true`.
 */
export interface CrashPoint {
  atSave?: number;
  keep?: boolean;
  atYield?: number;
}

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

/** What one invocation came to: the driver's outcome, or a crash. */
export type InvocationOutcome = RunOutcome | { type: "crashed" };

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

/** Thrown by a dead invocation's saves: the runtime is gone, nothing it does is stored. */
class InvocationDied extends Error {
  override readonly name = "InvocationDied";
}

/**
 * The life of one invocation: its view of the clock, where it dies, and the wait for its end that
 * moves fake time when it stops moving.
 */
class InvocationLife {
  readonly clock: Clock;
  private dead = false;
  private saves = 0;
  private yields = 0;
  private readonly timers = new Set<TimerHandle>();
  private onDeath!: () => void;
  private readonly death = new Promise<void>((resolve) => (this.onDeath = resolve));

  constructor(
    private readonly shared: FakeClock,
    private readonly crash: CrashPoint | undefined,
  ) {
    const never = new Promise<void>(() => {});
    this.clock = {
      now: () => shared.now(),
      setTimer: (callback, ms) => {
        const handle = shared.setTimer(() => {
          this.timers.delete(handle);
          callback();
        }, ms);
        this.timers.add(handle);
        return handle;
      },
      clearTimer: (handle) => {
        this.timers.delete(handle);
        shared.clearTimer(handle);
      },
      // A dead invocation's turns never come.
      yield: () => {
        if (!this.dead && ++this.yields === crash?.atYield) this.die();
        return this.dead ? never : shared.yield();
      },
      random: () => shared.random(),
    };
  }

  /** Counts a save (its number is returned) and dies at the one the crash names, unless it is kept. */
  beforeSave(): number {
    if (this.dead) throw new InvocationDied("the invocation died");
    const nth = ++this.saves;
    if (nth === this.crash?.atSave && !this.crash.keep) {
      this.die();
      throw new InvocationDied("the invocation died before this save committed");
    }
    return nth;
  }

  /** A save that was slow commits only if the invocation still lives. */
  beforeCommit(): void {
    if (this.dead) throw new InvocationDied("the invocation died before this save committed");
  }

  afterSave(nth: number): void {
    if (nth === this.crash?.atSave && this.crash.keep) this.die();
  }

  private die(): void {
    this.dead = true;
    // Its timers die with it.
    for (const handle of this.timers) this.shared.clearTimer(handle);
    this.timers.clear();
    this.onDeath();
  }

  /** The invocation's outcome, or "crashed" once it died; time jumps to its next timer when it stands still. */
  async outlive(run: Promise<RunOutcome>, quietTurns: number): Promise<InvocationOutcome> {
    let ended = false;
    const outcome = run.then(
      (value): InvocationOutcome => value,
      (err: unknown): InvocationOutcome => {
        if (this.dead) return { type: "crashed" };
        throw err;
      },
    );
    const crashed = this.death.then((): InvocationOutcome => ({ type: "crashed" }));
    try {
      return await Promise.race([outcome, crashed, this.moveTimeWhenQuiet(() => ended, quietTurns)]);
    } finally {
      ended = true;
    }
  }

  /**
   * Watches the clock's turns; after `quietTurns` turns in which nothing yielded, fires the next
   * timer. Rejects if the invocation stands still with no timer left (it would hang for ever).
   */
  private async moveTimeWhenQuiet(ended: () => boolean, quietTurns: number): Promise<never> {
    let seen = this.shared.yields;
    let quiet = 0;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (ended()) return new Promise<never>(() => {});
      if (this.shared.yields !== seen) {
        seen = this.shared.yields;
        quiet = 0;
      } else if (++quiet >= quietTurns) {
        const next = this.shared.nextTimerAt();
        if (next === undefined) throw new Error("the invocation stands still and has no timer to fire: it would never end");
        this.shared.advanceTo(next);
        quiet = 0;
      }
    }
  }
}
