import { describe, expect, it } from "vitest";
import { hashStepId, StepIdAllocator } from "./step.ts";

describe("StepIdAllocator", () => {
  it('keeps a first id as written and gives repeats ":1", ":2" in call order', () => {
    const ids = new StepIdAllocator();
    expect(["a", "a", "b", "a", "b"].map((id) => ids.next(id))).toEqual(["a", "a:1", "b", "a:2", "b:1"]);
  });

  it("starts over for each allocator (each invocation of a run)", () => {
    const first = new StepIdAllocator();
    first.next("a");
    first.next("a");
    expect(new StepIdAllocator().next("a")).toBe("a");
  });

  it('never hands out the same id twice, even when a user id looks like a repeat ("a:1")', () => {
    // inngest-js skips a suffix that is already taken; ids must be unique in a run.
    const ids = new StepIdAllocator();
    const given = ["a", "a:1", "a"].map((id) => ids.next(id));
    expect(new Set(given).size).toBe(3);
  });
});

describe("hashStepId", () => {
  it("is the SHA-1 hex of the id, as Inngest stores step ids", async () => {
    expect(await hashStepId("a")).toBe("86f7e437faa5a7fce15d1ddcb9eaeaea377667b8");
    expect(await hashStepId("")).toBe("da39a3ee5e6b4b0d3255bfef95601890afd80709");
  });

  it("is stable and tells repeated ids apart", async () => {
    expect(await hashStepId("item:1")).toBe(await hashStepId("item:1"));
    expect(await hashStepId("item:1")).not.toBe(await hashStepId("item"));
    expect(await hashStepId("item:1")).toMatch(/^[0-9a-f]{40}$/);
  });

  it("hashes any text, unicode included", async () => {
    expect(await hashStepId("étape ✓")).toMatch(/^[0-9a-f]{40}$/);
  });
});
