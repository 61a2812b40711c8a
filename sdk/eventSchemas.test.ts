import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { Stepflare } from "./client.ts";
import { EventSchemas } from "./eventSchemas.ts";
import { validateEventData } from "./eventType.ts";

type Signup = { name: "app/user.signup"; data: { email: string; plan: "free" | "pro" } };

const schemas = new EventSchemas()
  .fromRecord<{ "app/user.created": { data: { id: string } } }>()
  .fromUnion<Signup | { name: "app/user.deleted"; data: { id: string; reason?: string } }>()
  .fromZod({ "app/order.placed": { data: z.object({ orderId: z.string(), total: z.number().min(0) }) } })
  .fromZod([z.object({ name: z.literal("app/order.shipped"), data: z.object({ orderId: z.string(), carrier: z.string() }) })])
  .fromSchema({ "app/invoice.paid": z.object({ invoiceId: z.string(), cents: z.number().int() }) });

describe("EventSchemas (Inngest v3)", () => {
  const app = new Stepflare({ id: "schemas", schemas });

  it("types event.data of a function triggered by a named event, in both createFunction forms", () => {
    app.createFunction({ id: "v3-form" }, { event: "app/order.placed" }, async ({ event }) => {
      expectTypeOf(event.data).toEqualTypeOf<{ orderId: string; total: number }>();
    });
    app.createFunction({ id: "v4-form", triggers: [{ event: "app/user.signup" }] }, async ({ event }) => {
      expectTypeOf(event.data.plan).toEqualTypeOf<"free" | "pro">();
    });
    app.createFunction({ id: "several" }, [{ event: "app/user.created" }, { event: "app/order.shipped" }], async ({ event }) => {
      expectTypeOf(event.data).toEqualTypeOf<{ id: string } | { orderId: string; carrier: string }>();
    });
    app.createFunction({ id: "standard" }, { event: "app/invoice.paid" }, async ({ event }) => {
      expectTypeOf(event.data.cents).toEqualTypeOf<number>();
    });
    // An event the schemas do not name is untyped, as before.
    app.createFunction({ id: "other" }, { event: "app/elsewhere" }, async ({ event }) => {
      expectTypeOf(event.data).toEqualTypeOf<Record<string, any>>(); // eslint-disable-line @typescript-eslint/no-explicit-any
    });
  });

  it("types send(): a known name takes its data", () => {
    expectTypeOf(app.send).parameter(0).extract<{ name: "app/order.placed" }>().toHaveProperty("data").toEqualTypeOf<{ orderId: string; total: number }>();
    // @ts-expect-error: total must be a number
    void (() => app.send({ name: "app/order.placed", data: { orderId: "o1", total: "12" } }));
    // @ts-expect-error: the schemas do not name this event
    void (() => app.send({ name: "app/unknown", data: {} }));
  });

  it("leaves a client without schemas untyped", () => {
    const plain = new Stepflare({ id: "plain" });
    void (() => plain.send({ name: "anything", data: { any: 1 } }));
  });

  it("gives the zod and Standard Schemas as event types to check, and none for types-only events", () => {
    const types = new Map(schemas.eventTypes().map((type) => [type.name, type]));
    expect([...types.keys()].sort()).toEqual(["app/invoice.paid", "app/order.placed", "app/order.shipped"]);
    expect(() => validateEventData(types.get("app/order.placed")!, { orderId: "o1", total: -1 }, 0)).toThrow(/data\.total/);
    expect(() => validateEventData(types.get("app/order.shipped")!, { orderId: "o1" }, 2)).toThrow(/event 2 \(app\/order.shipped\): data\.carrier/);
    expect(() => validateEventData(types.get("app/invoice.paid")!, { invoiceId: "i", cents: 5 }, 0)).not.toThrow();
  });

  it("checks an older zod schema (no Standard Schema) through its safeParse", () => {
    const legacy = {
      safeParse: (value: unknown) =>
        typeof (value as { id?: unknown }).id === "string" ? { success: true, data: value } : { success: false, error: { issues: [{ message: "Required", path: ["id"] }] } },
    };
    const [type] = new EventSchemas().fromZod({ "app/legacy": { data: legacy } }).eventTypes();
    expect(() => validateEventData(type!, {}, 0)).toThrow(/data\.id: Required/);
    expect(() => new EventSchemas().fromZod({ "app/bad": { data: 42 } })).toThrow(/neither a Standard Schema nor a zod schema/);
  });
});
