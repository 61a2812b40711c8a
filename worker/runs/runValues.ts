import type { StepRecord } from "../../sdk/driver.ts";
import { deletePrefix, getValue, LARGE_VALUE_CHARS, MAX_LARGE_VALUE_BYTES, putValue, R2_MARKER, runPrefix, runValueKey } from "../platform/largeValues.ts";

// A run's step outputs too large for a row, in R2 when a bucket is bound (platform/largeValues.ts).
// RunStore's writes are synchronous and R2's are not, so a step's output is *staged* first: written
// to R2 (the awaited part), then named by the step's row in the synchronous write that follows. A row
// read names its R2 object by a reference; the output it stands for is fetched by loadSteps() before
// anything reads it (an invocation, the run's view, its stream). Without a bucket, nothing is staged
// and no reference is ever read: RunStore works as it did.

/** A step output read from its row but not fetched from R2 yet. */
class Unloaded {
  constructor(readonly reference: string) {}
}

export class RunValues {
  /** Per owner (a step id): the value about to be written and what its row stores for it (its JSON, or an R2 reference). */
  private readonly staged = new Map<string, { value: unknown; stored: string }>();
  /** References read from rows whose outputs are not fetched yet. */
  private unloaded = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly bucket: R2Bucket | undefined,
  ) {}

  /** The most one step output may be here: 16 MiB with a bucket, else undefined (the SDK's 4 MiB). */
  get maxStepOutputBytes(): number | undefined {
    return this.bucket ? MAX_LARGE_VALUE_BYTES : undefined;
  }

  /**
   * Prepares the write of a step's output: a large one is written to R2 first (the promise), a
   * small one's JSON is kept so it is not made twice. Undefined when there is nothing to wait for.
   *
   * @example
   * await values.stageStep(runId, step);
   * store.saveStep(step);
   */
  stageStep(runId: string, step: StepRecord): Promise<void> | undefined {
    if (!this.bucket || step.output === undefined) return undefined;
    const text = JSON.stringify(step.output);
    if (text.length <= LARGE_VALUE_CHARS) {
      this.staged.set(step.id, { value: step.output, stored: text });
      return undefined;
    }
    return putValue(this.bucket, runValueKey(runId, `steps/${step.id}`), text).then((stored) => void this.staged.set(step.id, { value: step.output, stored }));
  }

  /** The owner's value was staged into R2 and not written yet. */
  isStaged(owner: string, value: unknown): boolean {
    const staged = this.staged.get(owner);
    return staged !== undefined && staged.value === value && staged.stored.startsWith(R2_MARKER);
  }

  /** What to store for the owner's `value` if it was staged (the same value, not one staged before), forgetting it. */
  takeStaged(owner: string, value: unknown): string | undefined {
    if (this.staged.size === 0) return undefined;
    const staged = this.staged.get(owner);
    if (!staged) return undefined;
    this.staged.delete(owner);
    return staged.value === value ? staged.stored : undefined;
  }

  /** What a row's R2 reference reads as until loadSteps() fetches it. */
  placeholder(reference: string): Unloaded {
    this.unloaded++;
    return new Unloaded(reference);
  }

  /** Fetches every step output read as a reference; nothing when none was read (no call, no read). */
  async loadSteps(steps: Iterable<StepRecord>): Promise<void> {
    if (this.unloaded === 0) return;
    const loads: Promise<void>[] = [];
    for (const step of steps) {
      const output = step.output;
      if (output instanceof Unloaded) loads.push(getValue(this.bucket, output.reference).then((value) => void (step.output = value)));
    }
    await Promise.all(loads);
    this.unloaded = 0;
  }

  /** Forgets what was read (the store reads its rows again). */
  clear(): void {
    this.staged.clear();
    this.unloaded = 0;
  }

  /**
   * Deletes the run's objects in R2 before its storage goes (retention): only when a step's row
   * names one, so a run without large outputs costs no R2 call. The whole prefix goes, so an object
   * written before a crash kept its row from being written goes too.
   */
  async deleteRun(runId: string, hasTables: boolean): Promise<void> {
    if (!this.bucket || !hasTables) return;
    const named = this.sql.exec("SELECT 1 FROM steps WHERE substr(output, 1, ?) = ? LIMIT 1", R2_MARKER.length, R2_MARKER).toArray().length > 0;
    if (named) await deletePrefix(this.bucket, runPrefix(runId));
  }
}
