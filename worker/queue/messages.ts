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

/**
 * What travels on the EVENTS queue. Events ride inline when small; a large one travels by
 * reference and the consumer reads it from the D1 event log. Run ends update the D1 runs index
 * in the consumer's batch (DESIGN "Performance notes").
 */
export type QueueMessage =
  | ({ type: "event" } & AcceptedEvent)
  | ({ type: "event-ref" } & EventRef)
  | { type: "run-ended"; runId: string; functionId: string; eventId: string; status: RunStatus; startedAt: number; endedAt: number }
  | { type: "cancel-page"; cancellationId: string }
  | { type: "resume-page"; functionId: string; skip: boolean };
