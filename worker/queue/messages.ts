import type { AcceptedEvent, EventRef, RunStatus } from "../platform/types.ts";

/**
 * What travels on the EVENTS queue. Events ride inline when small; a large one travels by
 * reference and the consumer reads it from the D1 event log. Run ends update the D1 runs index
 * in the consumer's batch (DESIGN "Performance notes").
 */
export type QueueMessage =
  | { type: "events"; events: AcceptedEvent[] }
  // One event a message: sent by releases before events were packed, still read.
  | ({ type: "event" } & AcceptedEvent)
  | ({ type: "event-ref" } & EventRef)
  // A run's end for the runs index, as an earlier engine queued it (a run's object now writes its end itself).
  | { type: "run-ended"; runId: string; functionId: string; eventId: string; status: RunStatus; startedAt: number; endedAt: number }
  | { type: "cancel-page"; cancellationId: string }
  | { type: "resume-page"; functionId: string; skip: boolean }
  // Runs whose index rows the tick prunes at retention: their objects delete their records (schedule/retention.ts).
  | { type: "expire-runs"; runIds: string[] };
