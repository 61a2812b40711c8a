// The life of one in-memory invocation of sdk/testing.ts's TestRun: its view of the clock, where it
// dies as an isolate dies, and the fake time it moves while it stands still.

import { setImmediate } from "node:timers";
import type { Clock, TimerHandle } from "./clock.ts";
import type { FakeClock } from "./fakeClock.ts";
import type { RunOutcome } from "./run.ts";

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

/** What one invocation came to: the driver's outcome, or a crash. */
export type InvocationOutcome = RunOutcome | { type: "crashed" };

/** Thrown by a dead invocation's saves: the runtime is gone, nothing it does is stored. */
class InvocationDied extends Error {
  override readonly name = "InvocationDied";
}

/**
 * The life of one invocation: its view of the clock, where it dies, and the wait for its end that
 * moves fake time when it stops moving.
 */
export class InvocationLife {
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
