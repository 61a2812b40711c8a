// A Clock for tests: time moves only when told, and the driver's turns take none of it.

import { setImmediate } from "node:timers";
import type { Clock, TimerHandle } from "./clock.ts";

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
