/** A timer a Clock set, to be cleared with the same Clock. */
export type TimerHandle = unknown;

/**
 * Time as the driver sees it: the clock, timers, the yield between steps and the randomness of
 * retry jitter all come from the host, so tests move time instead of sleeping.
 */
export interface Clock {
  now(): number;
  setTimer(callback: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle | undefined): void;
  /** Resolves after other work queued on the thread had its turn (a macrotask). */
  yield(): Promise<void>;
  /** A number in [0, 1), for jitter. */
  random(): number;
}

/** The real clock: Date.now, setTimeout, Math.random. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (callback, ms) => setTimeout(callback, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout> | undefined),
  yield: () => new Promise((resolve) => setTimeout(resolve, 0)),
  random: () => Math.random(),
};
