import type { Op } from "./wire.ts";

// Checkpoints: the steps the SDK runs during a call and reports (`POST /v1/checkpoint/:runId/async`)
// before it answers, handed to the invocation that opened the call and stored as its answer's ops would be.

/**
 * Where the SDK's checkpoints of a call in progress arrive (`POST /v1/checkpoint/:runId/async`
 * reaches the RunObject, which hands them to the invocation that opened the call's id).
 */
export interface CheckpointBoard {
  open(callId: string, accept: (ops: Op[]) => Promise<void>): void;
  close(callId: string): void;
}

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

/**
 * Accepts a checkpoint's steps, in order, as its call's answer would (`act` on each op); an outcome
 * an op would give is not the checkpoint's to give.
 *
 * @example
 * board.open(callId, (ops) => acceptCheckpoint(ops, (op) => actOnOp(op, scope, clock.now(), undefined)));
 */
export async function acceptCheckpoint(ops: Op[], act: (op: Op) => Promise<unknown>): Promise<void> {
  for (const op of ops) {
    // A run ends by the call's answer, not by a checkpoint.
    if (op.op === "RunComplete") continue;
    await act(op);
  }
}
