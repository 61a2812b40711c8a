import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runIdFor as engines } from "../worker/platform/runId.ts";
import { runIdFor } from "./scenarios.mjs";

describe("chaos's run ids", () => {
  it("are the engine's, for any function, event id and time", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.integer({ min: 0, max: 2 ** 48 - 1 }), (functionId, eventId, at) => {
        expect(runIdFor(functionId, eventId, at)).toBe(engines(functionId, eventId, at));
      }),
    );
  });
});
