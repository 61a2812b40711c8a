// The order in which one invocation of the driver (sdk/driver.ts) hands results to the handler:
// its stored steps in the order they first settled (sdk/replay.ts), then its new results by seq.

/**
 * The results waiting for their turn in one invocation. A stored step the handler asked for
 * settles when the replay reaches it; a new result, stored, reaches the handler only once the
 * replay is done, and in seq order (a slower save of an earlier result holds back the later ones).
 *
 * @example
 * const order = new SettleOrder(replayOrder(steps, starts), highestSeq(steps));
 */
export class SettleOrder {
  private replayed = 0;
  private readonly requested = new Map<string, () => void>();
  /** New results, stored, waiting to reach the handler after the replay (by seq). */
  private readonly held: { seq: number; deliver: () => void }[] = [];

  constructor(
    /** Stored steps to settle, by hashed id, first settled first. */
    private readonly replay: readonly string[],
    /** The seq of the last result the handler got. */
    private delivered: number,
  ) {}

  /** True when the run has stored steps to replay. */
  get hasStoredSteps(): boolean {
    return this.replay.length > 0;
  }

  /** True while stored steps remain to settle. */
  get isReplaying(): boolean {
    return this.replayed < this.replay.length;
  }

  /** The handler asked for the stored step `id`: `settle` runs in its turn. */
  requestStored(id: string, settle: () => void): void {
    this.requested.set(id, settle);
  }

  /** The next stored step, once the handler has asked for it, and whether it is the last one. */
  takeStored(): { settle: () => void; last: boolean } | undefined {
    const next = this.replay[this.replayed];
    const settle = next === undefined ? undefined : this.requested.get(next);
    if (!settle) return undefined;
    this.replayed++;
    this.requested.delete(next!);
    return { settle, last: this.replayed >= this.replay.length };
  }

  /** A new result, stored: `deliver` runs in its turn. */
  hold(seq: number, deliver: () => void): void {
    this.held.push({ seq, deliver });
    this.held.sort((a, b) => a.seq - b.seq);
  }

  /** The next new result, once the replay is done and the results before it were delivered. */
  takeHeld(): (() => void) | undefined {
    const next = this.held[0];
    if (!next || this.isReplaying || next.seq !== this.delivered + 1) return undefined;
    this.held.shift();
    this.delivered = next.seq;
    return next.deliver;
  }
}
