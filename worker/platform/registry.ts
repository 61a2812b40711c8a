import { Stepflare } from "../../sdk/client.ts";
import type { EventType } from "../../sdk/eventType.ts";
import type { StepflareFunction } from "../../sdk/function.ts";

/**
 * The functions this Worker serves, set once by `serve()` when the entry module loads, which is
 * before any request, queue batch or Durable Object of this isolate runs.
 */
let functions: StepflareFunction[] = [];

export function registerFunctions(list: StepflareFunction[]): void {
  // onFailure and onCancel handlers are functions of their own.
  const all = list.flatMap((fn) => [fn, ...(fn.failureFunction ? [fn.failureFunction] : []), ...(fn.cancelFunction ? [fn.cancelFunction] : [])]);
  const ids = new Set<string>();
  for (const fn of all) {
    if (ids.has(fn.id)) throw new TypeError(`serve(): two functions have the id "${fn.id}"; function ids must be unique`);
    ids.add(fn.id);
  }
  functions = all;
  // The clients' v3 EventSchemas first: an `eventType` trigger of the same name is the one checked.
  const clients = new Set(all.flatMap((fn) => (fn.client instanceof Stepflare && fn.client.schemas ? [fn.client.schemas] : [])));
  const fromSchemas = [...clients].flatMap((schemas) => schemas.eventTypes());
  eventTypes = new Map([...fromSchemas, ...all.flatMap((fn) => fn.eventTypes)].filter((type) => type.schema).map((type) => [type.name, type] as const));
}

/** The event types with a schema that the functions' triggers or their clients' EventSchemas declare, by event name. */
let eventTypes = new Map<string, EventType>();

/** The declared type of events named `name` (a trigger's `eventType` with a schema), if any. */
export function eventTypeOf(name: string): EventType | undefined {
  return eventTypes.get(name);
}

/** The functions of synced apps (worker/remote/apps.ts keeps them in step with D1). */
let remoteFunctions: StepflareFunction[] = [];

export function setRemoteFunctions(list: StepflareFunction[]): void {
  remoteFunctions = list;
}

/** True when a function of this Worker's own code has the id. */
export function isLocalFunction(id: string): boolean {
  return functions.some((fn) => fn.id === id);
}

export function allFunctions(): readonly StepflareFunction[] {
  return remoteFunctions.length === 0 ? functions : [...functions, ...remoteFunctions];
}

export function findFunction(id: string): StepflareFunction | undefined {
  return functions.find((fn) => fn.id === id) ?? remoteFunctions.find((fn) => fn.id === id);
}
