import type { Env } from "../platform/env.ts";
import type { FlowStore } from "./state.ts";

/** What each kind of control needs of its coordinator object (flow/FlowObject.ts). */
export interface Coordinator {
  env: Env;
  store: FlowStore;
  setAlarm(at: number): Promise<void>;
  getAlarm(): Promise<number | null>;
  deleteAlarm(): Promise<void>;
  /** Runs `work` with no other call to the coordinator slipping in meanwhile. */
  exclusively<T>(work: () => Promise<T>): Promise<T>;
  /** Tells runs their slot or their start was granted (those not told ask again at their own alarm). */
  tellGranted(runIds: string[]): Promise<unknown>;
}
