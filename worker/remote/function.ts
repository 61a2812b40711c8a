import { NonRetriableError } from "../../sdk/errors/NonRetriableError.ts";
import { StepflareFunction } from "../../sdk/function.ts";
import { definedOnly, type WireFunction } from "./wire.ts";

/** Where a remote function's code runs: the app that synced it and the URL its steps are called at. */
export interface RemoteTarget {
  appId: string;
  /** The runtime URL of the function's one step, `…?fnId=<id>&stepId=step`. */
  url: string;
}

/**
 * A function of an app served by the official `inngest` SDK, as its sync described it. It joins
 * the registry like a local function (triggers, crons, flow control, cancelOn all work the same);
 * a run of it executes through the HTTP transport (worker/remote/execute.ts) instead of a handler.
 */
export class RemoteFunction extends StepflareFunction {
  readonly remote: RemoteTarget;

  constructor(appId: string, wire: WireFunction) {
    super(configOf(wire), triggersOf(wire), remoteHandler);
    const step = Object.values(wire.steps)[0];
    if (!step) throw new TypeError(`function "${wire.id}": the sync names no step to call`);
    this.remote = { appId, url: step.runtime.url };
  }
}

function remoteHandler(): never {
  throw new NonRetriableError("a remote function's code runs in its app, not in the Worker");
}

/** The SDK's config, in the shape `createFunction` takes (Inngest's option names are ours). */
function configOf(wire: WireFunction): Record<string, unknown> {
  const retries = Object.values(wire.steps)[0]?.retries?.attempts;
  const concurrency = (Array.isArray(wire.concurrency) ? wire.concurrency : wire.concurrency === undefined ? [] : [wire.concurrency])
    .map((entry) => (typeof entry === "number" ? { limit: entry } : { limit: entry.limit, ...(entry.key ? { key: entry.key } : {}) }))
    // A limit of 0 is Inngest's "no limit".
    .filter((entry) => entry.limit > 0);
  return definedOnly({
    id: wire.id,
    name: wire.name,
    retries: retries === undefined ? undefined : Math.min(retries, 20),
    concurrency: concurrency.length ? concurrency : undefined,
    throttle: wire.throttle && definedOnly({ limit: wire.throttle.limit, period: wire.throttle.period, burst: wire.throttle.burst, key: wire.throttle.key }),
    rateLimit: wire.rateLimit && definedOnly({ limit: wire.rateLimit.limit, period: wire.rateLimit.period, key: wire.rateLimit.key }),
    debounce: wire.debounce && definedOnly({ period: wire.debounce.period, key: wire.debounce.key, timeout: wire.debounce.timeout }),
    batchEvents: wire.batchEvents && definedOnly({ maxSize: wire.batchEvents.maxSize, timeout: wire.batchEvents.timeout, key: wire.batchEvents.key }),
    idempotency: wire.idempotency,
    priority: wire.priority?.run ? { run: wire.priority.run } : undefined,
    timeouts: wire.timeouts && definedOnly({ start: wire.timeouts.start, finish: wire.timeouts.finish }),
    singleton: wire.singleton && definedOnly({ key: wire.singleton.key, mode: wire.singleton.mode }),
    cancelOn: wire.cancel?.length ? wire.cancel.map((entry) => definedOnly({ event: entry.event, if: entry.if, timeout: entry.timeout })) : undefined,
  });
}

function triggersOf(wire: WireFunction): unknown[] {
  return wire.triggers.map((trigger) => ("cron" in trigger ? { cron: trigger.cron } : definedOnly({ event: trigger.event, if: trigger.expression || undefined })));
}
