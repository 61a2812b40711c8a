import { describe, expect, it } from "vitest";
import { encodeSse, sseComment } from "./sse.ts";

describe("encodeSse", () => {
  it("writes id, event and data lines, then the blank line that ends the event", () => {
    expect(encodeSse({ id: 7, event: "step", data: '{"name":"a"}' })).toBe('id: 7\nevent: step\ndata: {"name":"a"}\n\n');
    expect(encodeSse({ data: "x" })).toBe("data: x\n\n");
    expect(encodeSse({ event: "end", data: "", retry: 2500.7 })).toBe("event: end\nretry: 2500\ndata: \n\n");
  });

  it("splits data with line breaks (any of CRLF, CR, LF) over several data lines", () => {
    expect(encodeSse({ data: "one\ntwo\r\nthree\rfour" })).toBe("data: one\ndata: two\ndata: three\ndata: four\n\n");
  });

  it("keeps JSON on one line: its line breaks inside strings are escapes", () => {
    const data = JSON.stringify({ text: "a\nb" });
    expect(encodeSse({ data })).toBe(`data: ${data}\n\n`);
  });

  it("refuses an event name or id that would end its line early", () => {
    expect(() => encodeSse({ event: "a\nb", data: "" })).toThrow(/event must be one line/);
    expect(() => encodeSse({ id: "1\r", data: "" })).toThrow(/id must be one line/);
  });
});

describe("sseComment", () => {
  it("is a line a client ignores, on one line", () => {
    expect(sseComment("keep-alive")).toBe(": keep-alive\n\n");
    expect(sseComment("a\nb")).toBe(": a b\n\n");
  });
});
