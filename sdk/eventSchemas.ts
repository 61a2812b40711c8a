// Inngest v3's `EventSchemas`: the client's catalogue of events, which types `event.data` of the
// functions it creates and the events `send()` takes. Schemas given at run time (zod, or any
// Standard Schema) are also checked wherever events come in, as an `eventType`'s schema is.
import { EventType, type StandardSchemaV1 } from "./eventType.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyRecord = Record<string, any>;

/** An event of the catalogue: its name, its data, and the fields every event may carry. */
export interface CatalogEvent<TName extends string = string, TData = AnyRecord, TUser = AnyRecord> {
  name: TName;
  data: TData;
  user?: TUser;
  id?: string;
  ts?: number;
  v?: string;
}

/** The catalogue: events by name. `{}` is a client without schemas (every event untyped). */
export type EventCatalog = Record<string, CatalogEvent>;

/** What `fromRecord` and `fromUnion` take for each event: its data (and user), as types. */
export type EventSchemaEntry = { name?: string; data?: AnyRecord; user?: AnyRecord };

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type ToCatalog<T extends Record<string, EventSchemaEntry>> = {
  [K in keyof T & string]: CatalogEvent<K, T[K] extends { data: infer D } ? D : AnyRecord, T[K] extends { user: infer U } ? U : AnyRecord>;
};

/** The catalogue so far with `TNew`'s events added (a name given again takes its new type). */
type Combine<TCatalog extends EventCatalog, TNew extends Record<string, EventSchemaEntry>> = Simplify<Omit<TCatalog, keyof TNew> & ToCatalog<TNew>>;

/** The output type of a schema: a Standard Schema's, or a zod schema's without one (zod before 3.24). */
type OutputOf<S> = S extends { readonly "~standard": { readonly types?: infer T } }
  ? NonNullable<T> extends { readonly output: infer O }
    ? O
    : AnyRecord
  : S extends { readonly _output: infer O }
    ? O
    : AnyRecord;

/** `fromZod`'s record form: `{ "app/x": { data: z.object(...), user?: z.object(...) } }`. */
export type ZodEventRecord = Record<string, { data?: unknown; user?: unknown }>;
/** `fromZod`'s list form: `[z.object({ name: z.literal("app/x"), data: z.object(...) })]`. */
export type ZodEventList = readonly { shape: { name: { value: string }; data?: unknown; user?: unknown } }[];

type ZodRecordEntries<T> = {
  [K in keyof T & string]: { data: T[K] extends { data: infer D } ? (undefined extends D ? AnyRecord : OutputOf<D>) : AnyRecord } & (T[K] extends { user: infer U } ? { user: OutputOf<U> } : {});
};

// The name from the literal's output type: zod 4 types `ZodLiteral.value` as a plain string.
type ZodListToRecord<T extends ZodEventList> = {
  [E in T[number] as OutputOf<E["shape"]["name"]> & string]: { data: E["shape"]["data"]; user: E["shape"]["user"] };
};

type ZodEntries<T extends ZodEventRecord | ZodEventList> = T extends ZodEventList ? ZodRecordEntries<ZodListToRecord<T>> : T extends ZodEventRecord ? ZodRecordEntries<T> : never;

type StandardEntries<T extends Record<string, StandardSchemaV1>> = { [K in keyof T & string]: { data: OutputOf<T[K]> } };

/** A schema of an event's data that we can check: a Standard Schema (zod 3.24+, valibot, arktype) or an older zod. */
type DataSchema = StandardSchemaV1<Record<string, unknown>>;

/**
 * Inngest v3's event schemas: chain `fromRecord`, `fromUnion`, `fromZod`, `fromSchema` and give it
 * to the client as `schemas`. Types type `event.data` and `send()`; zod and Standard Schemas are
 * also checked wherever events come in (`POST /e/:key`, `send()`, `step.sendEvent`).
 *
 * @example
 * const schemas = new EventSchemas()
 *   .fromRecord<{ "app/user.created": { data: { id: string } } }>()
 *   .fromZod({ "app/order.placed": { data: z.object({ total: z.number() }) } });
 * const inngest = new Inngest({ id: "shop", schemas });
 */
export class EventSchemas<TCatalog extends EventCatalog = {}> {
  /** The catalogue's type, for the client to read (no value at run time). */
  declare readonly catalog?: TCatalog;
  /** The schemas to check at run time, by event name (the types-only ones have none). */
  private readonly checked = new Map<string, DataSchema>();

  /** Adds events by a record type: `{ [name]: { data, user? } }`. Types only. */
  fromRecord<T extends Record<string, EventSchemaEntry>>(): EventSchemas<Combine<TCatalog, T>> {
    return this as unknown as EventSchemas<Combine<TCatalog, T>>;
  }

  /** Adds events by a union of `{ name, data }` types. Types only. */
  fromUnion<T extends { name: string } & EventSchemaEntry>(): EventSchemas<Combine<TCatalog, { [K in T["name"]]: Extract<T, { name: K }> }>> {
    return this as never;
  }

  /** Adds generated types (as `fromRecord`). Types only. */
  fromGenerated<T extends Record<string, EventSchemaEntry>>(): EventSchemas<Combine<TCatalog, T>> {
    return this as never;
  }

  /** Adds events by zod schemas, as a record or a list of `z.object({ name: z.literal(...), data })`; their data is checked. */
  fromZod<const T extends ZodEventRecord | ZodEventList>(schemas: T): EventSchemas<Combine<TCatalog, ZodEntries<T>>> {
    const entries: [string, unknown][] = Array.isArray(schemas)
      ? (schemas as ZodEventList).map((schema) => [schema.shape.name.value, schema.shape.data])
      : Object.entries(schemas as ZodEventRecord).map(([name, entry]) => [name, entry?.data]);
    for (const [name, schema] of entries) this.check(name, schema);
    return this as never;
  }

  /** Adds events by Standard Schemas of their data (`{ [name]: schema }`); their data is checked. */
  fromSchema<T extends Record<string, StandardSchemaV1>>(schemas: T): EventSchemas<Combine<TCatalog, StandardEntries<T>>> {
    for (const [name, schema] of Object.entries(schemas)) this.check(name, schema);
    return this as never;
  }

  /** The events whose data is checked, as event types (what the Worker checks incoming events with). */
  eventTypes(): EventType[] {
    return [...this.checked].map(([name, schema]) => new EventType({ name, schema }));
  }

  private check(name: string, schema: unknown): void {
    const standard = asStandard(schema);
    if (standard) this.checked.set(name, standard);
    else if (schema !== undefined) throw new TypeError(`EventSchemas: the schema of ${JSON.stringify(name)} is neither a Standard Schema nor a zod schema`);
  }
}

/** A schema as a Standard Schema: itself, or an older zod schema's `safeParse` wrapped as one. */
function asStandard(schema: unknown): DataSchema | undefined {
  if (typeof schema !== "object" || schema === null) return undefined;
  if ("~standard" in schema) return schema as DataSchema;
  const safeParse = (schema as { safeParse?: unknown }).safeParse;
  if (typeof safeParse !== "function") return undefined;
  type ZodResult = { success: true; data: Record<string, unknown> } | { success: false; error: { issues: { message: string; path: PropertyKey[] }[] } };
  return {
    "~standard": {
      version: 1,
      vendor: "zod",
      validate: (value) => {
        const result = (safeParse as (value: unknown) => ZodResult).call(schema, value);
        return result.success ? { value: result.data } : { issues: result.error.issues };
      },
    },
  };
}

/** True when the catalogue names events (a client given schemas), false for `{}`. */
export type HasCatalog<TCatalog> = keyof TCatalog extends never ? false : true;

/** The data of events named `TName` in the catalogue, or any object for a name it does not have. */
export type CatalogData<TCatalog, TName> = TName extends keyof TCatalog ? (TCatalog[TName] extends { data: infer D extends object } ? D : AnyRecord) : AnyRecord;

/** An event `send()` takes: with a catalogue, one of its events; without, any event. */
export type CatalogPayload<TCatalog extends EventCatalog, TFallback> = HasCatalog<TCatalog> extends true
  ? { [K in keyof TCatalog & string]: Omit<TCatalog[K], "name"> & { name: K } }[keyof TCatalog & string]
  : TFallback;
