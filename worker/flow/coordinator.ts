import type { CancelReason } from "../../sdk/function.ts";
import type { AcceptedEvent, RunStatus } from "../platform/types.ts";
import type { FlowStore } from "./state.ts";

/**
 * What each kind of control needs of its coordinator object (flow/FlowObject.ts): its storage, its
 * alarm, and the runs it speaks to. The modules of each kind see nothing else, so a test can run
 * them against a real SQLite with the runs and the clock of its own.
 */
export interface Coordinator {
  store: FlowStore;
  setAlarm(at: number): Promise<void>;
  getAlarm(): Promise<number | null>;
  deleteAlarm(): Promise<void>;
  /** Runs `work` with no other call to the coordinator slipping in meanwhile. */
  exclusively<T>(work: () => Promise<T>): Promise<T>;
  /** Tells runs their slot or their start was granted (those not told ask again at their own alarm). */
  tellGranted(runIds: string[]): Promise<unknown>;
  /**
   * Starts the run a debounce or batch collected (through the door into a run): "started", or
   * "held" when the function is paused and its events wait for the resume (to be collected again).
   */
  startCollected(functionId: string, kind: "debounce" | "batch", events: AcceptedEvent[], handLastOnly: boolean): Promise<"started" | "held">;
  /** How a run stands (null: no such run yet), and cancelling it if it has not ended (a singleton's). */
  runStatus(runId: string): Promise<{ status: RunStatus } | null>;
  cancelRun(runId: string, reason: CancelReason): Promise<unknown>;
}
