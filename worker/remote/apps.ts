import { ulid } from "ulidx";
import { allApps, appByDeployId, recordSyncError, upsertApp, type AppRow } from "../db/apps.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import { isLocalFunction, setRemoteFunctions } from "../platform/registry.ts";
import { isDevMode } from "../platform/env.ts";
import { StepflareError } from "../platform/errors.ts";
import { RemoteFunction } from "./function.ts";
import { formatBytes, formatDuration, MAX_ANSWER_BYTES, readBounded, SYNC_TIMEOUT_MS } from "./bounds.ts";
import { appRequestSigner } from "./signer.ts";
import { registerBodySchema, stripDeployId, wireFunctionSchema, type RegisterBody } from "./wire.ts";
import { z } from "zod";

/**
 * How long this isolate trusts its copy of the apps' functions. A sync in this isolate updates it
 * at once; one in another isolate (production has many) is seen within this time.
 */
const FRESH_MS = 10_000;
let loadedAt: number | undefined;

/**
 * Makes the registry's remote functions at most FRESH_MS old (or fresh, with `force`): one D1 read
 * when stale. A failed read keeps the last copy (a D1 outage must not stop the runs of local
 * functions) unless `required`, when it throws. Answers whether the registry holds a copy (fresh,
 * or the last one when the read failed): without one, an event would match none of the apps' functions.
 * Nothing is shared between calls: under workerd a request may not await another one's I/O.
 */
export async function loadRemoteFunctions(env: Env, options: { force?: boolean; required?: boolean } = {}): Promise<boolean> {
  const now = Date.now();
  const previous = loadedAt;
  if (!options.force && previous !== undefined && now - previous < FRESH_MS) return true;
  // Callers that come while this read is out use the copy there is: a burst of requests makes one read, not one each.
  if (previous !== undefined) loadedAt = now;
  try {
    setRemoteFunctions(functionsOf(await allApps(env.DB)));
    loadedAt = now;
    return true;
  } catch (err) {
    loadedAt = previous;
    if (options.required) throw err;
    createLogger().warn("could not read the synced apps; keeping the last copy", { error: String(err) });
    return loadedAt !== undefined;
  }
}

/** True once this isolate has read the apps' functions (however long ago). */
export function hasRemoteCopy(): boolean {
  return loadedAt !== undefined;
}

function functionsOf(apps: AppRow[]): RemoteFunction[] {
  return apps.flatMap((app) => {
    const logger = createLogger({ app_id: app.id });
    return z
      .array(z.unknown())
      .parse(JSON.parse(app.functions))
      .flatMap((raw) => {
        // Each function was checked when its app synced; one that no longer builds (say, a local function took its id since) is left out alone.
        try {
          return [new RemoteFunction(app.id, wireFunctionSchema.parse(raw))];
        } catch (err) {
          logger.error("a synced function could not be registered", { error: String(err) });
          return [];
        }
      });
  });
}

/** Why a sync failed: the SDK answers its PUT with `status` and `error` from here (protocol §1). */
export class SyncError extends StepflareError {
  override name = "SyncError";
  constructor(message: string, code: "app.sync_invalid" | "app.sync_failed" = "app.sync_invalid") {
    super(code, message);
  }
}

/**
 * Stores what an app's sync sent (the SDK's `POST /fn/register`, or an in-band sync's answer): its
 * functions replace the ones it had, so a function it no longer serves is gone. Every function is
 * built as the registry will build it, so a bad option or expression fails the sync, naming it.
 */
export async function storeRegistration(env: Env, body: unknown): Promise<{ app: AppRow; modified: boolean }> {
  const parsed = registerBodySchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SyncError(`invalid sync: ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  const registration = parsed.data;
  for (const wire of registration.functions) {
    if (isLocalFunction(wire.id)) throw new SyncError(`function "${wire.id}": a function of the Worker itself has this id`);
    try {
      new RemoteFunction(registration.appName, wire);
    } catch (err) {
      throw new SyncError(`function "${wire.id}": ${(err as Error).message}`);
    }
  }
  const functions = JSON.stringify(registration.functions.map((wire) => ({ ...wire, steps: stepsWithoutDeployId(wire.steps) })));
  const apps = await allApps(env.DB);
  const before = apps.find((app) => app.id === registration.appName);
  // Ids are `<app>-<function>`: app "a" with function "b-c" and app "a-b" with function "c" would both be "a-b-c".
  const taken = new Map(apps.filter((app) => app.id !== registration.appName).flatMap((app) => (JSON.parse(app.functions) as { id: string }[]).map((fn) => [fn.id, app.id] as const)));
  for (const wire of registration.functions) {
    const owner = taken.get(wire.id);
    if (owner) throw new SyncError(`function "${wire.id}": app "${owner}" has a function of this id`);
  }
  const app: AppRow = {
    id: registration.appName,
    url: stripDeployId(registration.url),
    framework: registration.framework ?? null,
    sdk: registration.sdk ?? null,
    functions,
    synced_at: Date.now(),
    deploy_id: registration.deployId ?? null,
    error: null,
    error_at: null,
  };
  await upsertApp(env.DB, app);
  await loadRemoteFunctions(env, { force: true });
  return { app, modified: before?.functions !== functions };
}

function stepsWithoutDeployId(steps: RegisterBody["functions"][number]["steps"]) {
  return Object.fromEntries(Object.entries(steps).map(([id, step]) => [id, { ...step, runtime: { ...step.runtime, url: stripDeployId(step.runtime.url) } }]));
}

/** What answers the SDK's in-band sync: the same functions as an out-of-band one, named differently. */
const inBandAnswerSchema = z.object({ app_id: z.string(), url: z.string(), framework: z.string().optional(), sdk: z.string().optional(), functions: z.array(z.unknown()) }).passthrough();

/**
 * Syncs the app served at `url` (`POST /v1/apps`): sends it the `PUT` that asks for its functions.
 * An SDK that allows in-band syncs answers with them; otherwise it calls `POST /fn/register` back
 * before answering, and the app is found by the sync's deploy id. A failure (a redirect, no answer
 * within SYNC_TIMEOUT_MS, an answer past MAX_ANSWER_BYTES or, outside dev mode, not signed by the
 * app's SDK) is recorded on the app's row (if it synced before) and thrown.
 */
export async function syncApp(env: Env, url: string): Promise<AppRow> {
  const deployId = ulid();
  const target = new URL(url);
  target.searchParams.set("deployId", deployId);
  const serveUrl = stripDeployId(url);
  const signal = AbortSignal.timeout(SYNC_TIMEOUT_MS);
  try {
    const signer = appRequestSigner(env);
    const plain = JSON.stringify({ url: serveUrl });
    const signed = signer ? await signer.sign(plain) : { body: plain, headers: {} };
    const response = await fetch(target, {
      method: "PUT",
      headers: { "content-type": "application/json", "x-inngest-server-kind": isDevMode(env) ? "dev" : "cloud", "x-inngest-sync-kind": "in_band", ...signed.headers },
      body: signed.body,
      // The app is called at the URL it is synced at: one that redirects would have every call redirected.
      redirect: "manual",
      signal,
    });
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel().catch(() => undefined);
      const location = response.headers.get("location");
      throw new SyncError(`the app's address answered the sync with HTTP ${response.status}, a redirect${location ? ` to ${location}` : ""}: sync the address the SDK answers on (redirects are not followed)`);
    }
    const body = await readBounded(response.body, MAX_ANSWER_BYTES, signal, response.headers.get("content-length"));
    if (!body.ok) throw new SyncError(`the app's answer to the sync is over ${formatBytes(MAX_ANSWER_BYTES)}, the limit of an answer`);
    const text = body.text;
    const answer = parseJson(text);
    if (!response.ok) throw new SyncError(`the app answered the sync with HTTP ${response.status}: ${messageOf(answer) ?? text.slice(0, 200)}`);
    if (response.headers.get("x-inngest-sync-kind") === "in_band") {
      // Outside dev mode the SDK signs its answer: functions from anything else are not the app's.
      const check = signer ? await signer.verify(response.headers.get("x-inngest-signature"), text) : undefined;
      if (check && !check.valid) throw new SyncError(`the app's in-band sync answer is not signed by its SDK (${check.reason}): is its INNGEST_SIGNING_KEY this Worker's STEPFLARE_SIGNING_KEY?`);
      const inBand = inBandAnswerSchema.safeParse(answer);
      if (!inBand.success) throw new SyncError("the app's in-band sync answer is not a list of functions");
      const { app } = await storeRegistration(env, { url: inBand.data.url, appName: inBand.data.app_id, framework: inBand.data.framework, sdk: inBand.data.sdk, deployId, functions: inBand.data.functions });
      return app;
    }
    const app = await appByDeployId(env.DB, deployId);
    if (!app) throw new SyncError(`the app answered the sync but never registered its functions (is INNGEST_BASE_URL set to this Worker's URL?)`);
    return app;
  } catch (err) {
    const message = err instanceof SyncError ? err.message : signal.aborted ? `the app did not answer the sync within ${formatDuration(SYNC_TIMEOUT_MS)} (the limit of a sync)` : `could not reach the app: ${String(err)}`;
    await recordSyncError(env.DB, serveUrl, message, Date.now());
    throw new SyncError(message, "app.sync_failed");
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function messageOf(value: unknown): string | undefined {
  const record = value as { message?: unknown; error?: unknown } | undefined;
  const message = record?.error ?? record?.message;
  return typeof message === "string" ? message : undefined;
}
