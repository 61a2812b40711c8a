import { z } from "zod";

// The official `inngest` SDK's side of the wire (as a running v4 app speaks it): what its sync
// sends to `POST /fn/register`, and what its answers to a call request hold. Only what Stepflare
// reads is checked strictly; the rest passes through, so a newer SDK's extra fields do no harm.

const durationSchema = z.union([z.number().nonnegative(), z.string().min(1)]);
const keySchema = z.string().min(1).optional();

const concurrencyEntrySchema = z.union([
  z.number().int(),
  // `scope` ("fn", "env", "account") is Inngest's: one Stepflare deployment is one environment of one account, so every scope is the function's.
  z.object({ limit: z.number().int(), key: keySchema, scope: z.string().optional() }).passthrough(),
]);

/** One function as the SDK's sync describes it: id `<appId>-<fnId>`, its triggers and options as written. */
export const wireFunctionSchema = z
  .object({
    id: z.string().min(1).max(255),
    name: z.string().max(255).optional(),
    triggers: z
      .array(z.union([z.object({ event: z.string().min(1), expression: z.string().optional() }).passthrough(), z.object({ cron: z.string().min(1), jitter: z.unknown().optional() }).passthrough()]))
      .min(1),
    steps: z.record(
      z.string(),
      z
        .object({
          id: z.string(),
          runtime: z.object({ type: z.string(), url: z.string().url() }).passthrough(),
          // Inngest's `attempts` is the retry count (protocol §1).
          retries: z.object({ attempts: z.number().int().min(0) }).partial().optional(),
        })
        .passthrough(),
    ),
    concurrency: z.union([concurrencyEntrySchema, z.array(concurrencyEntrySchema)]).optional(),
    throttle: z.object({ limit: z.number().int(), period: durationSchema, burst: z.number().int().optional(), key: keySchema }).passthrough().optional(),
    rateLimit: z.object({ limit: z.number().int(), period: durationSchema, key: keySchema }).passthrough().optional(),
    debounce: z.object({ period: durationSchema, key: keySchema, timeout: durationSchema.optional() }).passthrough().optional(),
    batchEvents: z.object({ maxSize: z.number().int(), timeout: durationSchema, key: keySchema, if: z.string().optional() }).passthrough().optional(),
    idempotency: z.string().optional(),
    priority: z.object({ run: z.string().optional() }).passthrough().optional(),
    timeouts: z.object({ start: durationSchema.optional(), finish: durationSchema.optional() }).passthrough().optional(),
    singleton: z.object({ key: keySchema, mode: z.enum(["skip", "cancel"]) }).passthrough().optional(),
    cancel: z.array(z.object({ event: z.string().min(1), if: z.string().optional(), timeout: durationSchema.optional() }).passthrough()).optional(),
  })
  .passthrough();
export type WireFunction = z.infer<typeof wireFunctionSchema>;

/** The body of the SDK's `POST /fn/register` (out-of-band sync). */
export const registerBodySchema = z
  .object({
    url: z.string().url(),
    appName: z.string().min(1).max(255),
    framework: z.string().optional(),
    sdk: z.string().optional(),
    deployId: z.string().optional(),
    functions: z.array(wireFunctionSchema).max(1000),
  })
  .passthrough();
export type RegisterBody = z.infer<typeof registerBodySchema>;

/** One op of a 206 answer (protocol §3). */
export const opSchema = z
  .object({
    id: z.string().min(1),
    op: z.string().min(1),
    name: z.string().optional(),
    displayName: z.string().optional(),
    opts: z.record(z.string(), z.unknown()).nullish(),
    userland: z.object({ id: z.string() }).passthrough().nullish(),
    data: z.unknown().optional(),
    error: z.unknown().optional(),
  })
  .passthrough();
export type Op = z.infer<typeof opSchema>;

/**
 * Every op the executor acts on (protocol §3), each with its handler (worker/remote/ops.ts).
 * `op` stays a string on the wire: an op of another name fails the run as unsupported.
 */
export const OP_NAMES = ["StepRun", "Step", "StepError", "StepFailed", "StepPlanned", "Sleep", "WaitForEvent", "InvokeFunction", "RunComplete", "DiscoveryRequest", "Gateway", "DeferAdd", "DeferAbort"] as const;
export type OpName = (typeof OP_NAMES)[number];

/** True for an op name the executor knows. */
export function isOpName(name: string): name is OpName {
  return (OP_NAMES as readonly string[]).includes(name);
}

export const opsSchema = z.array(opSchema);

/** An error as the SDK serializes it. */
export const wireErrorSchema = z.object({ name: z.string().default("Error"), message: z.string().default(""), stack: z.string().optional() }).passthrough();

/** The serve URL without the `deployId` a sync added to it (v4 keeps it there; protocol §1). */
export function stripDeployId(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.delete("deployId");
  return parsed.toString();
}

/** The object without its undefined fields (the registry's strict schemas refuse `key: undefined`). */
export function definedOnly<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
