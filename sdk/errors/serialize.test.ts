import { describe, expect, it } from "vitest";
import { drive } from "../testing.ts";
import { MAX_CAUSE_DEPTH, deserializeError, serializeError } from "./serialize.ts";
import { StepError } from "./StepError.ts";

describe("serializeError", () => {
  it("keeps the cause chain and the error's own fields, as Inngest's serializer does", () => {
    const err = Object.assign(new Error("Oh no!", { cause: Object.assign(new TypeError("This is the cause"), { code: "E_CAUSE" }) }), { code: "E_TOP", status: 503 });
    const serialized = serializeError(err);
    expect(serialized).toEqual({
      name: "Error",
      message: "Oh no!",
      stack: expect.any(String),
      code: "E_TOP",
      status: 503,
      cause: { name: "TypeError", message: "This is the cause", stack: expect.any(String), code: "E_CAUSE" },
    });
    // It survives JSON, as it is stored.
    expect(JSON.parse(JSON.stringify(serialized))).toEqual(serialized);
  });

  it("keeps a cause that is not an error as the value it is", () => {
    expect(serializeError(new Error("failed", { cause: { retryable: false, reason: "quota" } })).cause).toEqual({ retryable: false, reason: "quota" });
    expect(serializeError(new Error("failed", { cause: "timeout" })).cause).toBe("timeout");
  });

  it("stops at 5 causes below the error, and at a cause that loops back", () => {
    let err = new Error("level 7");
    for (let level = 6; level >= 0; level--) err = new Error(`level ${level}`, { cause: err });
    let depth = 0;
    for (let at: { cause?: unknown } = serializeError(err); at.cause !== undefined; at = at.cause as { cause?: unknown }) depth++;
    expect(depth).toBe(MAX_CAUSE_DEPTH);

    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(serializeError(a)).toMatchObject({ message: "a", cause: { message: "b" } });
    expect((serializeError(a).cause as { cause?: unknown }).cause).toBeUndefined();
  });

  it("leaves out fields that are not JSON or past the size bound, and cuts long texts", () => {
    const err = Object.assign(new Error("x".repeat(20_000)), { fn: () => 1, big: "y".repeat(5_000), small: "ok", count: 2n });
    const serialized = serializeError(err);
    expect(serialized).not.toHaveProperty("fn");
    expect(serialized).not.toHaveProperty("big");
    expect(serialized).not.toHaveProperty("count");
    expect(serialized.small).toBe("ok");
    expect(serialized.message.length).toBeLessThan(16_500);
    const longCause = serializeError(new Error("top", { cause: new Error("z".repeat(10_000)) })).cause as { message: string };
    expect(longCause.message.length).toBeLessThan(4_200);
  });

  it("serializes what is not an Error, as before", () => {
    expect(serializeError("plain")).toEqual({ name: "Error", message: "plain" });
    expect(serializeError({ a: 1 })).toEqual({ name: "Error", message: '{"a":1}' });
  });
});

describe("deserializeError", () => {
  it("rebuilds the error and its cause chain, fields included", () => {
    const rebuilt = deserializeError(serializeError(Object.assign(new Error("Oh no!", { cause: new RangeError("This is the cause") }), { code: "E1" })));
    expect(rebuilt).toBeInstanceOf(Error);
    expect(rebuilt.message).toBe("Oh no!");
    expect((rebuilt as Error & { code?: string }).code).toBe("E1");
    expect(rebuilt.cause).toBeInstanceOf(Error);
    expect((rebuilt.cause as Error).name).toBe("RangeError");
    expect((rebuilt.cause as Error).message).toBe("This is the cause");
  });
});

describe("a step's error in the handler", () => {
  // Inngest's "handling step errors" scenario, on replay: the StepError keeps the message and the cause.
  it("keeps its message and its cause on every replay", async () => {
    const { outcome, run } = await drive(
      async ({ step }) => {
        let told = "";
        try {
          await step.run("a", () => {
            throw new Error("Oh no!", { cause: new Error("This is the cause") });
          });
        } catch (err) {
          expect(err).toBeInstanceOf(StepError);
          told = await step.run("b", () => `err was: "${(err as Error).message}" and the cause was: "${((err as Error).cause as Error).message}"`);
        }
        await step.sleep("then", "1s");
        return told;
      },
      { retries: 1 },
    );
    expect(outcome).toEqual({ type: "completed", output: 'err was: "Oh no!" and the cause was: "This is the cause"' });
    expect(run.step("a")?.error).toMatchObject({ name: "Error", message: "Oh no!", cause: { name: "Error", message: "This is the cause" } });
  });
});
