import type { CheckpointBoard } from "./execute.ts";
import type { Op } from "./wire.ts";

/** The calls of one run that may checkpoint, open while they are in progress (a RunObject has one). */
export class CallCheckpoints implements CheckpointBoard {
  private readonly open_ = new Map<string, (ops: Op[]) => Promise<void>>();

  open(callId: string, accept: (ops: Op[]) => Promise<void>): void {
    this.open_.set(callId, accept);
  }

  close(callId: string): void {
    this.open_.delete(callId);
  }

  /** Hands a checkpoint's steps to its call; "stale" when that call is not in progress. */
  async deliver(callId: string, ops: Op[]): Promise<"stored" | "stale"> {
    const accept = this.open_.get(callId);
    if (!accept) return "stale";
    await accept(ops);
    return "stored";
  }
}
