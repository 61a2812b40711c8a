import type { HandlerFailures, StepRecord } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import type { InvocationStart } from "../../sdk/replay.ts";
import type { SerializedError } from "../../sdk/types.ts";
import type { InvokeResult } from "../../sdk/wait.ts";
import type { WaitRow } from "../db/waits.ts";
import type { RunStatus } from "../platform/types.ts";
import type { RepairEntry } from "./health.ts";

// The records of a run: what its object stores (RunStore.ts) and what its start and reads carry.

/** A run's own record, as its RunObject keeps it. */
export interface RunRecord {
  id: string;
  functionId: string;
  events: StoredEvent[];
  status: RunStatus;
  /** Failures of the handler's code outside steps, per unit (see HandlerFailures). */
  handlerFailures: HandlerFailures;
  /** Every invocation's start: written before the invocation runs any step body. */
  starts: InvocationStart[];
  /** An invocation began and has not ended: if none is running in memory, it died with the runtime. */
  isOpen: boolean;
  /** Invocations in a row that died with the runtime. */
  crashes: number;
  /** When the run is due again, while it waits (a sleep, a retry, a delayed start). */
  wakeAt?: number;
  /** The run that started this one with step.invoke, and its step. */
  parent?: RunParent;
  /** `timeouts.finish`: the run is cancelled if it has not ended by then. */
  finishBy?: number;
  output?: unknown;
  error?: SerializedError;
  startedAt: number;
  /** When the runs index says it started: its trigger's receipt for an event's run, else its start. */
  listedAt: number;
  /**
   * The shard of the runs index its object wrote its row to (0: DB), null until it has (it writes its
   * own, once it is worth a row: see RunDelivery). Its end goes to the same shard, whatever was added since.
   */
  indexedOn: number | null;
  endedAt?: number;
  /** What operators did to move it on (wake, re-point, cancel, rerun), oldest first. */
  repairs?: RepairEntry[];
}

/**
 * When a wait's or a child run's resolution settles: when its event was received (or now), but
 * after the latest invocation began, since that invocation never saw it and a replay must take the
 * path it took.
 */
export function resolutionTime(run: RunRecord, receivedAt?: number, now = Date.now()): number {
  return Math.max(Math.min(receivedAt ?? now, now), (run.starts.at(-1)?.at ?? 0) + 1);
}

/**
 * Told of each change a RunStore writes, right after it writes it (the run's live stream): a step
 * saved, an invocation begun (with the status before it), the run ended.
 */
export interface RunObserver {
  stepSaved(step: StepRecord): void;
  invocationBegan(run: RunRecord, previous: RunStatus, steps: Iterable<StepRecord>): void;
  runEnded(run: RunRecord): void;
}

/** The parent of a run started by step.invoke. */
export interface RunParent {
  runId: string;
  stepId: string;
}

/**
 * What must leave the object, written in the commit that decides it and delivered until accepted
 * (DESIGN "An outbox for everything that leaves a run"): events to send, waits to store in D1
 * (and the run's waits to delete when it ends), a child run to start, a parent to resume, the
 * run's trace to export (worker/traces/: its spans are built from the run's records when sent).
 */
export type OutboxEntry =
  | { kind: "events"; events: StoredEvent[] }
  | { kind: "waits"; rows: WaitRow[] }
  | { kind: "clear-waits" }
  | { kind: "release-flow" }
  | { kind: "invoke"; stepId: string; functionId: string; data: Record<string, unknown> }
  | { kind: "resume-parent"; parent: RunParent; result: InvokeResult }
  | { kind: "trace" };

/** A run's record with its steps. */
export interface RunWithSteps {
  run: RunRecord;
  steps: StepRecord[];
}

export interface RunInit {
  runId: string;
  functionId: string;
  events: StoredEvent[];
  /** When the event API accepted the trigger (now for a run no event started): its cancelOn listens from then. */
  receivedAt?: number;
  /** Epoch ms to start at: now, or an event's future `ts` (a delayed run). */
  startAt: number;
  /** The run whose step.invoke started this one. */
  parent?: RunParent;
  /** Steps a re-run from a step reuses, as the run it re-runs stored them: they are not run again. */
  memo?: StepRecord[];
  /** When the runs index says it started (its trigger's receipt for an event's run); now if absent. */
  listedAt?: number;
  /**
   * The caller starts the run again until a start answers (an event's dispatch: the queue redelivers
   * its message, the sweep finds an event never marked dispatched): the start then answers once the
   * first invocation ended or its watchdog is armed, and a run that ends soon sets no watchdog.
   */
  repeatedUntilAnswered?: boolean;
}
