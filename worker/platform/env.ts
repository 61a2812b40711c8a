import { z } from "zod";
import { StepflareError } from "./errors.ts";
import type { RunObject } from "../runs/RunObject.ts";
import type { Scheduler } from "../schedule/Scheduler.ts";
import type { FlowObject } from "../flow/FlowObject.ts";
import type { QueueMessage } from "../queue/messages.ts";

/** The bindings `wrangler.toml` declares. */
export interface Env {
  DB: D1Database;
  /** More D1 databases as shards of the event log, the runs index and the waits (worker/db/shards.ts): DB_1, DB_2, …, consecutive. */
  [shard: `DB_${number}`]: D1Database | undefined;
  EVENTS: Queue<QueueMessage>;
  RUNS: DurableObjectNamespace<RunObject>;
  SCHEDULER: DurableObjectNamespace<Scheduler>;
  /** Flow-control coordinators, one per (function, option, key value). */
  FLOWS: DurableObjectNamespace<FlowObject>;
  /** Optional R2 bucket for values too large for a row (worker/platform/largeValues.ts); without it the smaller limits hold. */
  VALUES?: R2Bucket;
  /** "1" under `wrangler dev`: any event key works and the API is open. */
  STEPFLARE_DEV?: string;
  /** Secret: the event keys `POST /e/:key` accepts outside dev mode, comma-separated. */
  STEPFLARE_EVENT_KEYS?: string;
  /** Secret: the bearer token the REST API needs outside dev mode. */
  STEPFLARE_SIGNING_KEY?: string;
  /** Days events, runs index rows and finished runs are kept (a positive whole number; default 30). */
  STEPFLARE_RETENTION_DAYS?: string;
  /** An OTLP/HTTP traces endpoint (`https://collector.example/v1/traces`): each run's end exports its trace there. */
  STEPFLARE_OTLP_ENDPOINT?: string;
  /** Headers for that endpoint, `name=value` pairs separated by commas (OTEL_EXPORTER_OTLP_HEADERS's form). */
  STEPFLARE_OTLP_HEADERS?: string;
  /** Seconds past its wake time after which an unfinished run counts as stuck (default 60; admin/stuck.ts). */
  STEPFLARE_STUCK_OVERDUE_SECONDS?: string;
  /** Seconds one step may keep retrying before its run counts as stuck (default 3600; admin/stuck.ts). */
  STEPFLARE_STUCK_RETRYING_SECONDS?: string;
  /** Events in a row a chain of runs may send before a send fails its step (default 32; platform/guardSettings.ts). */
  STEPFLARE_MAX_EVENT_DEPTH?: string;
  /** Dollars at list price the whole account may spend in a UTC day before every function is paused (unset: no limit). */
  STEPFLARE_BUDGET_DAILY?: string;
}

/**
 * True in dev mode (`STEPFLARE_DEV = "1"`, which `npm run dev` passes with `--var`): any event key
 * works and the API and dashboard are open. Never set in `wrangler.toml`, so a deploy is closed.
 */
export function isDevMode(env: Pick<Env, "STEPFLARE_DEV">): boolean {
  return env.STEPFLARE_DEV === "1";
}

/**
 * The forms of `STEPFLARE_SIGNING_KEY` the README documents: 64 lowercase hex characters
 * (`openssl rand -hex 32`), alone or after Inngest's `signkey-<env>-` prefix (`signkey-prod-`).
 */
export const SIGNING_KEY_FORM = /^(?:signkey-[a-z]+-)?[0-9a-f]{64}$/;

/** The last signing key checked, so a bad one is logged once per isolate, not at every request. */
let checkedSigningKey: { raw: string; ok: boolean } | undefined;

/**
 * The signing key, or undefined when the secret is not set. A key in another form is refused:
 * throws a StepflareError (`config.invalid`, a 503) naming the secret, never showing it. The
 * `inngest` SDK hashes a key read as hex into an app's credential, so a key that is not hex gives a
 * credential that other keys give too (`my-super-secret-password` and `my-other-secret-password!`).
 * Checked at an isolate's first use of the key, and logged then.
 *
 * @example
 * const key = signingKey(c.env);
 * if (!key) return missingSecret(c, "STEPFLARE_SIGNING_KEY");
 */
export function signingKey(env: Pick<Env, "STEPFLARE_SIGNING_KEY">): string | undefined {
  const raw = env.STEPFLARE_SIGNING_KEY;
  if (!raw) return undefined;
  if (checkedSigningKey?.raw !== raw) {
    checkedSigningKey = { raw, ok: SIGNING_KEY_FORM.test(raw) };
    if (!checkedSigningKey.ok) console.error(JSON.stringify({ level: "error", message: SIGNING_KEY_REFUSAL }));
  }
  if (!checkedSigningKey.ok) throw new StepflareError("config.invalid", SIGNING_KEY_REFUSAL);
  return raw;
}

const SIGNING_KEY_REFUSAL =
  "STEPFLARE_SIGNING_KEY is not in a form Stepflare accepts: use 64 lowercase hex characters (`openssl rand -hex 32`), alone or after Inngest's `signkey-<env>-` prefix " +
  '(`echo "signkey-prod-$(openssl rand -hex 32)"`), and set it with `wrangler secret put STEPFLARE_SIGNING_KEY`';

export const DEFAULT_RETENTION_DAYS = 30;

const retentionDaysSchema = z
  .string()
  .trim()
  .regex(/^[0-9]+$/, "must be a whole number of days")
  .transform(Number)
  .pipe(z.number().int().positive("must be at least 1").max(Number.MAX_SAFE_INTEGER / 86_400_000, "is too large"));

/** The last value parsed, so a bad setting is warned about once per isolate, not at every tick. */
let parsedRetention: { raw: string | undefined; days: number } | undefined;

/**
 * How many days events, runs index rows and finished runs are kept: `STEPFLARE_RETENTION_DAYS`, or 30
 * when it is unset; an invalid value also gives 30, with a warning in the log.
 *
 * @example
 * retentionDays({ STEPFLARE_RETENTION_DAYS: "7" }); // 7
 */
export function retentionDays(env: Pick<Env, "STEPFLARE_RETENTION_DAYS">): number {
  const raw = env.STEPFLARE_RETENTION_DAYS;
  if (!parsedRetention || parsedRetention.raw !== raw) parsedRetention = { raw, days: parseRetentionDays(raw) };
  return parsedRetention.days;
}

function parseRetentionDays(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_RETENTION_DAYS;
  const result = retentionDaysSchema.safeParse(raw);
  if (result.success) return result.data;
  console.warn(
    JSON.stringify({
      level: "warn",
      message: `STEPFLARE_RETENTION_DAYS ${result.error.issues[0]?.message ?? "is invalid"}; keeping ${DEFAULT_RETENTION_DAYS} days`,
      value: raw,
    }),
  );
  return DEFAULT_RETENTION_DAYS;
}

const warnedSettings = new Set<string>();

/**
 * A Worker variable read with `schema`: unset or blank gives `fallback`; a bad value gives it too, with a
 * warning in the log once per isolate and value, saying what is wrong and what is kept (`keeping`).
 *
 * @example
 * readSetting("STEPFLARE_MAX_EVENT_DEPTH", env.STEPFLARE_MAX_EVENT_DEPTH, depthSchema, 32, "keeping 32");
 */
export function readSetting<T>(name: string, raw: string | undefined, schema: z.ZodType<T, string>, fallback: T, keeping: string): T {
  if (raw === undefined || raw.trim() === "") return fallback;
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  if (!warnedSettings.has(`${name}=${raw}`)) {
    warnedSettings.add(`${name}=${raw}`);
    console.warn(JSON.stringify({ level: "warn", message: `${name} ${result.error.issues[0]?.message ?? "is invalid"}; ${keeping}`, value: raw }));
  }
  return fallback;
}
