import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { Stepflare } from "./client.ts";
import { cron, eventType, invoke, staticSchema } from "./eventType.ts";

const app = new Stepflare({ id: "types" });
const signedUp = eventType("user/signed.up", { schema: z.object({ email: z.string().email(), plan: z.enum(["free", "pro"]) }) });

describe("eventType", () => {
  it("creates events of its name, and validate() applies its schema", async () => {
    const event = signedUp.create({ email: "ada@example.com", plan: "pro" }, { id: "e1" });
    expect(event).toMatchObject({ name: "user/signed.up", data: { email: "ada@example.com", plan: "pro" }, id: "e1" });
    await expect(event.validate()).resolves.toBeUndefined();
    // @ts-expect-error: not a plan the schema knows
    await expect(signedUp.create({ email: "ada@example.com", plan: "gold" }).validate()).rejects.toThrow(/event 0 \(user\/signed.up\): data\.plan/);
  });

  it("types event.data in the handler of a v4-form function, and builds its trigger", () => {
    const fn = app.createFunction({ id: "welcome", triggers: [signedUp] }, async ({ event }) => {
      expectTypeOf(event.data.plan).toEqualTypeOf<"free" | "pro">();
      return event.data.email;
    });
    expect(fn.triggers).toEqual([{ event: "user/signed.up" }]);
    expect(fn.eventTypes).toEqual([signedUp]);
  });

  it("cron(), invoke() and staticSchema() make what Inngest v4's helpers make", () => {
    expect(cron("0 9 * * 1")).toEqual({ cron: "0 9 * * 1" });
    const invoked = invoke(z.object({ n: z.number() }));
    expect(invoked.name).toBe("inngest/function.invoked");
    const typed = eventType("app/typed", { schema: staticSchema<{ n: number }>() });
    expect(() => typed.create({ n: 1 })).not.toThrow();
    const fn = app.createFunction({ id: "v4-cron", triggers: cron("TZ=Asia/Tokyo 0 0 * * *") }, async () => "ok");
    expect(fn.crons[0]!.timezone).toBe("Asia/Tokyo");
  });

  it("keeps the v3 form", () => {
    const fn = app.createFunction({ id: "v3" }, { event: "app/v3" }, async ({ event }) => event.data);
    expect(fn.triggers).toEqual([{ event: "app/v3" }]);
  });
});

describe("group.parallel", () => {
  it("races steps: the first to settle wins, and the others are memoized, never run again", async () => {
    const { drive } = await import("./testing.ts");
    const runs: string[] = [];
    const { outcome, run } = await drive(async ({ step, group }) => {
      const winner = await group.parallel({ mode: "race" }, () =>
        Promise.race([
          step.run("fast", () => (runs.push("fast"), "fast")),
          step.run("slow", async () => {
            runs.push("slow");
            await new Promise((resolve) => setTimeout(resolve, 5));
            return "slow";
          }),
        ]),
      );
      await step.sleep("after", "1s");
      return winner;
    });
    expect(outcome).toEqual({ type: "completed", output: "fast" });
    expect(runs).toEqual(["fast", "slow"]);
    expect([...run.steps.values()].map((s) => s.name).sort()).toEqual(["after", "fast", "slow"]);
    const { createGroupTools } = await import("./group.ts");
    const groupTools = createGroupTools({ runId: "r", experimentStep: async () => "unused" });
    expect(() => groupTools.parallel({ mode: "all" as "race" }, async () => 1)).toThrow(/mode "all"/);
    await expect(groupTools.parallel(async () => 2)).resolves.toBe(2);
  });
});
