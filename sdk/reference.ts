import type { StandardSchemaV1 } from "./eventType.ts";

/** What a schema gives (its output type), or `TDefault` without one. */
type SchemaOutput<TSchema, TDefault> = TSchema extends StandardSchemaV1<unknown, infer TOut> ? TOut : TDefault;

/**
 * A function named by its id rather than imported (Inngest's `InngestFunctionReference`): invoke
 * it with `step.invoke(id, { function: ref, data })` as you would the function itself. It is
 * resolved when the child run starts, to the function with that id among those this Worker serves.
 */
export class FunctionReference<TData extends Record<string, unknown> = Record<string, unknown>, TOutput = unknown> {
  readonly opts: { functionId: string; appId?: string };
  /** Types only: the data the function takes and the output it returns. */
  declare readonly "~types"?: { data: TData; output: TOutput };

  constructor(opts: { functionId: string; appId?: string }) {
    this.opts = opts;
  }

  /** The referenced function's id: what `step.invoke` starts, as it reads a function's `id`. */
  get id(): string {
    return this.opts.functionId;
  }

  get [Symbol.toStringTag](): "Inngest.FunctionReference" {
    return "Inngest.FunctionReference";
  }
}

/**
 * References a function by id (Inngest v4's `referenceFunction`), typed by optional schemas of its
 * `data` and its return value. `appId` is accepted for Inngest's sake; the function is looked up by
 * `functionId` among the functions this Worker serves.
 *
 * @example
 * const resize = referenceFunction({ functionId: "resize-image", schemas: { data: z.object({ url: z.string() }), return: z.object({ width: z.number() }) } });
 * const { width } = await step.invoke("resize", { function: resize, data: { url } });
 */
export function referenceFunction<TDataSchema extends StandardSchemaV1<Record<string, unknown>> | undefined = undefined, TReturnSchema extends StandardSchemaV1 | undefined = undefined>({
  functionId,
  appId,
}: {
  functionId: string;
  appId?: string;
  schemas?: { data?: TDataSchema; return?: TReturnSchema };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
}): FunctionReference<SchemaOutput<TDataSchema, Record<string, any>>, SchemaOutput<TReturnSchema, unknown>> {
  if (typeof functionId !== "string" || functionId.length === 0) throw new TypeError("referenceFunction({ functionId }): functionId must be a non-empty string");
  return new FunctionReference({ functionId, ...(appId !== undefined ? { appId } : {}) });
}
