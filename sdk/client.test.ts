import { afterEach, describe, expect, it, vi } from "vitest";
import { Stepflare } from "./client.ts";

const RESERVED = 'event 1: the name "inngest/function.failed" is reserved: names starting with "inngest/" are sent only by Stepflare';

/** A client that sends over HTTP to a stubbed fetch answering `ids`; answers the stub too. */
function httpClient(ids: string[] = ["01J0000000000000000000000A"]) {
  const fetchStub = vi.fn(async () => Response.json({ ids, status: 200 }));
  vi.stubGlobal("fetch", fetchStub);
  return { app: new Stepflare({ id: "client-test", baseUrl: "http://127.0.0.1:8787/", eventKey: "k" }), fetchStub };
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("Stepflare.send over HTTP", () => {
  it("posts the events to the event API and answers their ids", async () => {
    const { app, fetchStub } = httpClient();
    expect(await app.send({ name: "shop/order.paid", data: { n: 1 } })).toEqual({ ids: ["01J0000000000000000000000A"] });
    expect(fetchStub).toHaveBeenCalledWith("http://127.0.0.1:8787/e/k", expect.objectContaining({ method: "POST", body: '[{"name":"shop/order.paid","data":{"n":1}}]' }));
  });

  it("refuses a reserved name before sending, naming the event's index", async () => {
    const { app, fetchStub } = httpClient();
    await expect(app.send([{ name: "shop/order.paid" }, { name: "inngest/function.failed" }])).rejects.toThrow(`Stepflare.send: ${RESERVED}`);
    expect(fetchStub).not.toHaveBeenCalled();
  });

  it("refuses a name of the engine's own alerts (stepflare/…), which a function may trust", async () => {
    const { app, fetchStub } = httpClient();
    await expect(app.send({ name: "stepflare/run.stuck", data: { run_id: "x" } })).rejects.toThrow('names starting with "stepflare/" are sent only by Stepflare');
    expect(fetchStub).not.toHaveBeenCalled();
  });

  it("accepts names that only look like the reserved prefix", async () => {
    const { app, fetchStub } = httpClient();
    await app.send([{ name: "inngest" }, { name: "my-inngest/x" }, { name: "Inngest/x" }]);
    expect(fetchStub).toHaveBeenCalledOnce();
  });

  it("answers no ids for no events, without a request", async () => {
    const { app, fetchStub } = httpClient();
    expect(await app.send([])).toEqual({ ids: [] });
    expect(fetchStub).not.toHaveBeenCalled();
  });
});

describe("Stepflare.send inside a Worker", () => {
  it("answers no ids for no events, without calling the ingest path", async () => {
    const app = new Stepflare({ id: "client-test" });
    const sender = vi.fn(async () => ({ ids: ["unexpected"] }));
    app.useSender(sender);
    expect(await app.send([])).toEqual({ ids: [] });
    expect(sender).not.toHaveBeenCalled();
  });
});
