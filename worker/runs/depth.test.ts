import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../../sdk/event.ts";
import type { Env } from "../platform/env.ts";
import { atDepth, chainRefusal, endEventsWithinLimit, runDepth, withoutDepth } from "./depth.ts";

const event = (depth?: number): StoredEvent => ({ id: `e${depth ?? 0}`, name: "x/y", data: {}, ts: 0, ...(depth !== undefined ? { depth } : {}) });
const env = (limit?: string) => ({ STEPFLARE_MAX_EVENT_DEPTH: limit }) as Env;
const run = (depth: number) => ({ id: "run-1", functionId: "ping", events: [event(depth)] });

describe("the event chain's depth", () => {
  it("is the deepest trigger's, 0 for events from outside", () => {
    expect(runDepth([event()])).toBe(0);
    expect(runDepth([event(2), event(5), event()])).toBe(5);
    expect(atDepth([event()], 3)[0]!.depth).toBe(3);
    expect(withoutDepth([event(4)])[0]).not.toHaveProperty("depth");
  });

  it("refuses a send past the limit (default 32, or STEPFLARE_MAX_EVENT_DEPTH) with the chain and the setting named", () => {
    expect(chainRefusal(env(), run(31))).toBeNull();
    expect(chainRefusal(env(), run(32))).toBe(
      'event chain too deep: this would be 33 events in a row, each sent by a run the one before started, caused by function "ping" (run run-1); the limit is 32 (STEPFLARE_MAX_EVENT_DEPTH). ' +
        "A function that sends an event that triggers it again needs a condition to stop; raise STEPFLARE_MAX_EVENT_DEPTH only if the chain is meant to be this long",
    );
    expect(chainRefusal(env("4"), run(3))).toBeNull();
    expect(chainRefusal(env("4"), run(4))).toContain("the limit is 4");
    // A bad setting keeps the default.
    expect(chainRefusal(env("lots"), run(31))).toBeNull();
  });

  it("lets the events of a run's end go one past the limit, and drops them beyond", () => {
    expect(endEventsWithinLimit(env("4"), run(3), [event()])).toEqual([{ ...event(), depth: 4 }]);
    expect(endEventsWithinLimit(env("4"), run(4), [event()])).toEqual([{ ...event(), depth: 5 }]);
    expect(endEventsWithinLimit(env("4"), run(5), [event()])).toEqual([]);
  });
});
