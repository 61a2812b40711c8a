import { describe, expect, it } from "vitest";
import { dispatchedAtSql as engines } from "../../worker/db/events.ts";
import { dispatchedAtSql } from "./dispatched.mjs";

describe("the bench's and chaos's dispatched check", () => {
  it("is the engine's, for any table name", () => {
    const words = (sql: string) => sql.split(/\s+/).join(" ");
    expect(words(dispatchedAtSql())).toBe(words(engines()));
    expect(words(dispatchedAtSql("e"))).toBe(words(engines("e")));
  });
});
