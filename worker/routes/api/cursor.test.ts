import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "./cursor.ts";

describe("page cursors", () => {
  it("round-trip the last row's key, ids with any characters included", () => {
    for (const cursor of [{ at: 0, id: "" }, { at: 1_764_000_000_000, id: "01JABC" }, { at: 5, id: "a/b+c=?é" }]) {
      expect(decodeCursor(encodeCursor(cursor)!)).toEqual(cursor);
    }
    expect(encodeCursor(null)).toBeNull();
  });

  it("refuse text that is not one of ours", () => {
    for (const text of ["", "not base64!", btoa("{}"), btoa('["x", "y"]'), btoa("[1]")]) expect(decodeCursor(text)).toBeNull();
  });
});
