// The shared words of the engine: a run's status, and an event as the event log accepted it.

import type { StoredEvent } from "../../sdk/event.ts";

/** Run statuses as the REST API shows them (Inngest's names, plus Queued). */
export type RunStatus = "Queued" | "Running" | "Completed" | "Failed" | "Cancelled" | "Skipped";

/** `Skipped`: flow control (a rate limit) started no run for the event; only the runs index records it. */
export const FINAL_STATUSES: ReadonlySet<RunStatus> = new Set(["Completed", "Failed", "Cancelled", "Skipped"]);

/** An event with the time the event API accepted it (part of its runs' deterministic ids). */
export interface AcceptedEvent {
  event: StoredEvent;
  receivedAt: number;
}

/**
 * Names one accepted event in the log: an id may be sent again after the 24 h dedup window, and
 * each time is an event of its own, so the id alone is not enough.
 */
export interface EventRef {
  id: string;
  receivedAt: number;
}

