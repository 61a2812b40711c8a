import type { StepRecord } from "../../sdk/run.ts";
import type { Op } from "./wire.ts";

// Checkpoints: the steps the SDK runs during a call and reports (`POST /v1/checkpoint/:runId/async`)
// before it answers, handed to the invocation that opened the call and stored as its answer's ops
// would be. The SDK goes on with the next step only when its checkpoint is taken: when the run was
// cancelled, or a step is refused, the answer stops it (a 409, on which the SDK stops at once).

/** What became of a checkpoint. */
export type CheckpointVerdict =
  /** Stored: the SDK goes on. */
  | { type: "stored" }
  /** No call of that id is in progress (its invocation ended, or died with the runtime). */
  | { type: "stale" }
  /** The run was cancelled: nothing more of it is stored. */
  | { type: "cancelled" }
  /** A step was not stored as the SDK has it (its output over a limit): the SDK must not go on with its value. */
  | { type: "refused"; step: string; reason: string };

/**
 * Where the SDK's checkpoints of a call in progress arrive (`POST /v1/checkpoint/:runId/async`
 * reaches the RunObject, which hands them to the invocation that opened the call's id).
 */
export interface CheckpointBoard {
  open(callId: string, accept: (ops: Op[]) => Promise<CheckpointVerdict>): void;
  close(callId: string): void;
}

/** The calls of one run that may checkpoint, open while they are in progress (a RunObject has one). */
export class CallCheckpoints implements CheckpointBoard {
  private readonly open_ = new Map<string, (ops: Op[]) => Promise<CheckpointVerdict>>();

  open(callId: string, accept: (ops: Op[]) => Promise<CheckpointVerdict>): void {
    this.open_.set(callId, accept);
  }

  close(callId: string): void {
    this.open_.delete(callId);
  }

  /** Hands a checkpoint's steps to its call; "stale" when that call is not in progress. */
  async deliver(callId: string, ops: Op[]): Promise<CheckpointVerdict> {
    const accept = this.open_.get(callId);
    if (!accept) return { type: "stale" };
    return accept(ops);
  }
}

/** What accepting a checkpoint needs of its invocation. */
export interface CheckpointTaker {
  /** Acts on one op as the call's answer would (worker/remote/ops.ts). */
  act(op: Op): Promise<unknown>;
  /** The step as stored now. */
  stored(id: string): StepRecord | undefined;
  isCancelled(): boolean;
}

/**
 * Accepts a checkpoint's steps, in order, as its call's answer would; an outcome an op would give
 * is not the checkpoint's to give. Stops at a cancelled run, or at the first step reported run
 * that was stored failed (a limit refused its output): the steps after it ran on a value the run
 * will never replay, and are not stored.
 *
 * @example
 * board.open(callId, (ops) => acceptCheckpoint(ops, { act: (op) => actOnOp(op, scope, clock.now(), undefined), stored, isCancelled }));
 */
export async function acceptCheckpoint(ops: Op[], taker: CheckpointTaker): Promise<CheckpointVerdict> {
  for (const op of ops) {
    if (taker.isCancelled()) return { type: "cancelled" };
    // A run ends by the call's answer, not by a checkpoint.
    if (op.op === "RunComplete") continue;
    const before = taker.stored(op.id)?.status;
    await taker.act(op);
    const after = taker.stored(op.id);
    const reportedRun = op.op === "StepRun" || op.op === "Step";
    if (reportedRun && before !== "failed" && after?.status === "failed") {
      return { type: "refused", step: after.name, reason: after.error?.message ?? "its result was refused" };
    }
  }
  return { type: "stored" };
}

/**
 * The HTTP answer to a checkpoint: 200 when it was stored; otherwise a 409, the one status on which
 * the SDK stops at once (any other error it retries five times, about 3 s, then goes on with the
 * steps in its answer).
 *
 * @example
 * const { status, body } = checkpointAnswer(await runObject(env, runId).checkpoint(qiId, steps));
 */
export function checkpointAnswer(verdict: CheckpointVerdict): { status: 200 | 409; body: { ok: true } | { error: string } } {
  switch (verdict.type) {
    case "stored":
      return { status: 200, body: { ok: true } };
    case "stale":
      return { status: 409, body: { error: "this call is no longer the run's: stop" } };
    case "cancelled":
      return { status: 409, body: { error: "the run was cancelled: stop" } };
    case "refused":
      return { status: 409, body: { error: `step "${verdict.step}" was not stored (${verdict.reason}): stop; the run goes on from its next call` } };
  }
}
