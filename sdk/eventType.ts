// Inngest v4's typed events and trigger helpers: `eventType`, `cron`, `invoke`, `staticSchema`.

/** The Standard Schema interface (standardschema.dev), which zod, valibot, arktype and others implement. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

type StandardResult<Output> = { readonly value: Output; readonly issues?: undefined } | { readonly issues: ReadonlyArray<StandardIssue> };
interface StandardIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

type DataSchema = StandardSchemaV1<Record<string, unknown>>;
/** The data type a schema describes (a plain object without one). */
export type SchemaData<TSchema> = TSchema extends StandardSchemaV1<infer TData> ? TData : Record<string, unknown>;

/**
 * A named event with an optional schema for its data (Inngest v4's `eventType`): use it as a
 * trigger (`triggers: [orderPlaced]`) to type `event.data`, and to have every send of the event
 * validated: `app.send`, `step.sendEvent` and `POST /e/:key` refuse data the schema refuses.
 *
 * @example
 * const orderPlaced = eventType("shop/order.placed", { schema: z.object({ orderId: z.string() }) });
 * await app.send(orderPlaced.create({ orderId: "o1" }));
 */
export class EventType<TName extends string = string, TSchema extends DataSchema | undefined = DataSchema | undefined> {
  readonly event: TName;
  readonly name: TName;
  readonly schema: TSchema;
  readonly version?: string;

  constructor({ name, schema, version }: { name: TName; schema: TSchema; version?: string }) {
    this.event = name;
    this.name = name;
    this.schema = schema;
    if (version !== undefined) this.version = version;
  }

  /** An event of this type to send, with `validate()` to check its data before sending. */
  create(data: SchemaData<TSchema>, options: { id?: string; ts?: number; v?: string } = {}) {
    const event = { name: this.name, data, ...options, ...(this.version && !options.v ? { v: this.version } : {}) };
    return { ...event, validate: async () => validateEventData(this, data, 0) };
  }
}

/**
 * Declares an event type (Inngest v4).
 *
 * @example
 * const signedUp = eventType("user/signed.up", { schema: z.object({ email: z.string().email() }) });
 */
export function eventType<TName extends string, TSchema extends DataSchema | undefined = undefined>(name: TName, options: { schema?: TSchema; version?: string } = {}): EventType<TName, TSchema> {
  return new EventType({ name, schema: options.schema as TSchema, ...(options.version !== undefined ? { version: options.version } : {}) });
}

/** A cron trigger (Inngest v4's helper): `cron("TZ=Europe/Paris 0 9 * * 1")` is `{ cron: "TZ=Europe/Paris 0 9 * * 1" }`. */
export function cron<T extends string>(schedule: T): { cron: T } {
  return { cron: schedule };
}

/** The trigger of a function that is only invoked (`step.invoke`, the API), with its data's schema. */
export function invoke<TData extends Record<string, unknown>>(schema: StandardSchemaV1<TData>): EventType<"inngest/function.invoked", StandardSchemaV1<TData>> {
  return new EventType({ name: "inngest/function.invoked", schema });
}

/** A schema that types the data and checks nothing (Inngest v4's `staticSchema<T>()`). */
export function staticSchema<TData extends Record<string, unknown>>(): StandardSchemaV1<TData> {
  return { "~standard": { version: 1, vendor: "stepflare", validate: (value) => ({ value: value as TData }) } };
}

/** Why an event's data does not fit its type: the message and the path of the first issue. */
export class EventDataError extends Error {
  override name = "EventDataError";
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

/**
 * Checks an event's data against its type's schema; throws an EventDataError that names the
 * event (`index` in its request) and the field. Schemas are checked synchronously, as every send
 * path needs: zod, valibot and arktype are, for schemas without async refinements.
 */
export function validateEventData(type: { name: string; schema?: DataSchema | undefined }, data: unknown, index: number): void {
  if (!type.schema) return;
  const result = type.schema["~standard"].validate(data);
  if (result instanceof Promise) throw new EventDataError(`event ${index} (${type.name}): its schema validates asynchronously; event types need a synchronous schema`, `${index}.data`);
  if (!result.issues?.length) return;
  const issue = result.issues[0]!;
  const field = ["data", ...(issue.path ?? []).map((part) => String(typeof part === "object" ? part.key : part))].join(".");
  throw new EventDataError(`event ${index} (${type.name}): ${field}: ${issue.message}`, `${index}.${field}`);
}
