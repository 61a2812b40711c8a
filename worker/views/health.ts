import { z } from "@hono/zod-openapi";

// The shapes of stuck runs and their repairs (docs/production.md "Stuck runs"): the health check,
// a run's repairs on its timeline, what a repair answers.

/** Why a run is stuck, most telling first: a run stuck for several reasons is reported for the first. */
export const STUCK_REASONS = ["function_missing", "no_alarm", "overdue", "retrying"] as const;
export const stuckReasonSchema = z.enum(STUCK_REASONS).openapi("StuckReason", {
  description: "function_missing: no Worker or app registers its function; no_alarm: its object has no alarm; overdue: its wake time passed over a minute ago; retrying: a step has retried for over an hour",
});
export type StuckReason = z.infer<typeof stuckReasonSchema>;

/** `GET /v1/health`: stuck runs counted by reason, with the listing of each. */
export const healthViewSchema = z
  .object({
    stuck: z.object(Object.fromEntries(STUCK_REASONS.map((reason) => [reason, z.number().int()])) as Record<StuckReason, z.ZodNumber>),
    total_stuck: z.number().int(),
    links: z.object(Object.fromEntries(STUCK_REASONS.map((reason) => [reason, z.string()])) as Record<StuckReason, z.ZodString>).openapi({ description: "GET these for the runs stuck for each reason, a page at a time" }),
  })
  .openapi("Health");
export type HealthView = z.infer<typeof healthViewSchema>;

/** A repair as a run's timeline shows it. */
export const repairViewSchema = z
  .object({ action: z.enum(["wake", "cancel", "rerun", "repoint"]), at: z.string(), detail: z.string().optional().openapi({ description: "repoint: old → new function id; rerun: the new run's id" }) })
  .openapi("Repair");
export type RepairView = z.infer<typeof repairViewSchema>;

/** What a repair did to one run, or why it could not (in a bulk repair). */
export const repairResultSchema = z
  .object({
    run_id: z.string(),
    status: z.string().optional().openapi({ description: "The run's status after the repair" }),
    new_run_id: z.string().optional().openapi({ description: "rerun: the new run" }),
    error: z.string().optional().openapi({ description: "In a bulk repair: why this run was not repaired" }),
  })
  .openapi("RepairResult");

/** The links of the health check: the runs listing filtered by reason. */
export function healthView(counts: Record<string, number>): HealthView {
  const stuck = Object.fromEntries(STUCK_REASONS.map((reason) => [reason, counts[reason] ?? 0])) as Record<StuckReason, number>;
  const links = Object.fromEntries(STUCK_REASONS.map((reason) => [reason, `/v1/runs?stuck=${reason}`])) as Record<StuckReason, string>;
  return { stuck, total_stuck: Object.values(stuck).reduce((a, b) => a + b, 0), links };
}
