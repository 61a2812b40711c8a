/**
 * The remote executor against the real `inngest` SDK in process, on a network that is not always
 * the SDK's: answers from something else at its address (an HTML page, a redirect, a body cut
 * short or without end, no answer at all), answers changed on the way in cloud mode, checkpoints
 * the executor refuses, and a Date where the SDK writes a timeout. Only an answer from the SDK moves
 * a run; everything else is a failed call, retried, that says what came instead.
 */
import { referenceFunction } from "inngest";
import { describe, expect, it } from "vitest";
import type { Env } from "../platform/env.ts";
import { appRequestSigner } from "./signer.ts";
import { hostileAnswer, lazyBody, testApp, type CallInFlight } from "./testApp.ts";

const MiB = 1024 * 1024;

/** An app whose function `f` runs one step and returns what it gave. */
async function oneStepApp(interfere?: (call: CallInFlight) => Promise<Response | undefined> | Response | undefined, signingKey?: string) {
  let bodies = 0;
  const app = await testApp(
    (inngest) => [
      inngest.createFunction({ id: "f", triggers: [{ event: "t/f" }] }, async ({ step }) => {
        const value = await step.run("only", () => (bodies++, { greeting: "hello" }));
        return { value };
      }),
    ],
    { ...(interfere ? { interfere } : {}), ...(signingKey ? { signingKey } : {}) },
  );
  return { app, bodies: () => bodies };
}

const OUTPUT = { value: { greeting: "hello" } };

describe("answers that are not the SDK's", () => {
  it.each(["html", "json"] as const)("a 200 without the SDK's header (%s: a maintenance page, a gateway's JSON) is a failed call, not the run's output", async (kind) => {
    const { app } = await oneStepApp((call) => (call.n === 1 ? hostileAnswer(kind, call) : undefined));
    const run = app.run("f");
    expect(await run.drive()).toEqual({ type: "completed", output: OUTPUT });
    expect(run.outcomes[0]).toMatchObject({ type: "retry", error: { message: expect.stringMatching(/not an answer from the inngest SDK/) } });
  });

  it("a redirect is not followed: the SDK's status document (what a GET gets) never ends the run", async () => {
    // Followed as fetch follows a 301 to a POST, it is a GET, which the SDK answers with its status document.
    const { app } = await oneStepApp((call) => (call.n === 1 ? hostileAnswer("redirect", call) : undefined));
    const run = app.run("f");
    expect(await run.drive()).toEqual({ type: "completed", output: OUTPUT });
    expect(run.outcomes[0]).toMatchObject({ type: "retry", error: { message: expect.stringMatching(/redirect/) } });
  });

  it("an answer cut short (JSON that ends half way) is a failed call", async () => {
    const { app } = await oneStepApp((call) => (call.n === 2 ? hostileAnswer("truncated", call) : undefined));
    const run = app.run("f");
    expect(await run.drive()).toEqual({ type: "completed", output: OUTPUT });
    expect(run.outcomes.map((outcome) => outcome.type)).toEqual(["retry", "completed"]);
  });

  it("an answer past 16 MiB is refused, read no further than the limit", async () => {
    let huge: ReturnType<typeof lazyBody> | undefined;
    const { app } = await oneStepApp((call) => {
      if (call.n !== 1) return undefined;
      huge = lazyBody(64 * MiB, '"', "x", { status: 200, headers: { "content-type": "application/json", "x-inngest-sdk": "inngest-js:v4.24.0" } });
      return huge.response;
    });
    const run = app.run("f");
    expect(await run.drive()).toEqual({ type: "completed", output: OUTPUT });
    expect(run.outcomes[0]).toMatchObject({ type: "retry", error: { message: expect.stringMatching(/16 MiB/) } });
    // The chunk that crossed the limit, and the one the stream had queued ahead.
    expect(huge!.pulled()).toBeLessThanOrEqual(18 * MiB + 1);
  });

  it("an app that never answers: the call ends at its time bound (10 minutes), which the error names", async () => {
    const { app } = await oneStepApp((call) => (call.n === 1 ? hostileAnswer("silent", call) : undefined));
    const run = app.run("f");
    expect(await run.drive()).toEqual({ type: "completed", output: OUTPUT });
    expect(run.outcomes[0]).toMatchObject({ type: "retry", error: { message: expect.stringMatching(/10 minutes/) } });
  });

  it("in cloud mode, an answer whose signature does not match what came is refused", async () => {
    const key = `signkey-test-${"7a".repeat(32)}`;
    const { app } = await oneStepApp(async (call) => {
      if (call.n !== 1) return undefined;
      // Something on the way swaps the body and keeps the SDK's headers, its signature among them.
      const answer = await call.answer();
      expect(answer.headers.get("x-inngest-signature")).toMatch(/^t=\d+&s=[0-9a-f]{64}$/);
      return new Response(JSON.stringify({ forged: true }), { status: 200, headers: answer.headers });
    }, key);
    const run = app.run("f", { executor: { sign: appRequestSigner({ STEPFLARE_SIGNING_KEY: key } as Env) } });
    expect(await run.drive()).toEqual({ type: "completed", output: OUTPUT });
    expect(run.outcomes[0]).toMatchObject({ type: "retry", error: { message: expect.stringMatching(/signature/) } });
  });

  it("in cloud mode, an answer without a signature (an SDK before inngest-js 3.22.4, or a forgery) is refused, saying so", async () => {
    const key = `signkey-test-${"7a".repeat(32)}`;
    const { app } = await oneStepApp(async (call) => {
      if (call.n !== 1) return undefined;
      const answer = await call.answer();
      const headers = new Headers(answer.headers);
      headers.delete("x-inngest-signature");
      return new Response(await answer.text(), { status: answer.status, headers });
    }, key);
    const run = app.run("f", { executor: { sign: appRequestSigner({ STEPFLARE_SIGNING_KEY: key } as Env) } });
    expect(await run.drive()).toEqual({ type: "completed", output: OUTPUT });
    expect(run.outcomes[0]).toMatchObject({ type: "retry", error: { message: expect.stringMatching(/no x-inngest-signature.*3\.22\.4/) } });
  });
});

describe("checkpoints the executor does not take", () => {
  it("a checkpointed step refused for its size stops the SDK: the step fails for good, and no later step runs", async () => {
    const ran: string[] = [];
    const app = await testApp((inngest) => [
      inngest.createFunction({ id: "big", retries: 0, triggers: [{ event: "t/big" }] }, async ({ step }) => {
        await step.run("small", () => (ran.push("small"), 1));
        await step.run("huge", () => (ran.push("huge"), "x".repeat(5 * MiB)));
        await step.run("after", () => (ran.push("after"), 2));
        return "done";
      }),
    ]);
    const run = app.run("big", { checkpointing: true, retries: 0 });
    const outcome = await run.drive();
    expect(outcome).toMatchObject({ type: "failed", error: { message: expect.stringMatching(/4 MiB/) } });
    expect(run.step("huge")).toMatchObject({ status: "failed" });
    expect(ran).toEqual(["small", "huge"]);
  });

  it("a run cancelled during a checkpointed call: the SDK stops at its next checkpoint", async () => {
    const ran: number[] = [];
    let run: ReturnType<typeof app.run> | undefined;
    const app = await testApp(
      (inngest) => [
        inngest.createFunction({ id: "six", triggers: [{ event: "t/six" }] }, async ({ step }) => {
          for (let i = 1; i <= 6; i++) await step.run(`s${i}`, () => (ran.push(i), i));
        }),
      ],
      // The run is cancelled as step 2 reports its result.
      { onCheckpoint: (n) => void (n === 2 && (run!.cancelled = true)) },
    );
    run = app.run("six", { checkpointing: true });
    expect(await run.drive()).toEqual({ type: "cancelled" });
    expect(ran).toEqual([1, 2]);
  });
});

describe("what the SDK writes", () => {
  it("a Date as a waitForEvent or invoke timeout is the time it names (the SDK sends it as an ISO time)", async () => {
    const at = new Date(Date.now() + 60_000);
    const app = await testApp((inngest) => [
      inngest.createFunction({ id: "w", triggers: [{ event: "t/w" }] }, async ({ step }) => {
        const [reply, child] = await Promise.all([
          step.waitForEvent("reply", { event: "t/reply", timeout: at }),
          step.invoke("child", { function: referenceFunction({ functionId: "elsewhere" }), data: {}, timeout: at }),
        ]);
        return { reply, child };
      }),
    ]);
    const run = app.run("w");
    // Invoked until both are stored (the SDK reports them as it finds them).
    for (let i = 0; i < 3 && !(run.step("reply")?.wakeAt && run.step("child")?.wakeAt); i++) await run.invoke();
    expect(run.step("reply")).toMatchObject({ status: "waiting", wakeAt: at.getTime() });
    expect(run.step("child")).toMatchObject({ status: "waiting", wakeAt: at.getTime() });
  });

  it("a race-mode group: the step after it runs as soon as the first branch ends, not when the last does", async () => {
    const order: string[] = [];
    let release!: () => void;
    const slowGate = new Promise<void>((resolve) => (release = resolve));
    const app = await testApp((inngest) => [
      inngest.createFunction({ id: "race", triggers: [{ event: "t/race" }] }, async ({ step, group }) => {
        const winner = await group.parallel({ mode: "race" }, () =>
          Promise.race([step.run("fast", () => (order.push("fast"), "fast")), step.run("slow", async () => (await slowGate, order.push("slow"), "slow"))]),
        );
        // The slow branch is let go only once this step has run: if the executor waited for it, nothing would move.
        const after = await step.run("after", () => (order.push("after"), release(), `after ${winner}`));
        return after;
      }),
    ]);
    const run = app.run("race");
    expect(await run.drive()).toEqual({ type: "completed", output: "after fast" });
    // In one invocation: the loser landing while the app was asked what comes next is news, not "nothing to do".
    expect(run.outcomes).toHaveLength(1);
    expect(order).toEqual(["fast", "after", "slow"]);
    expect(run.step("slow")).toMatchObject({ status: "completed" });
  });
});

describe("a race's loser", () => {
  it("still out when the next call fails is waited for and stored, not run again in the retry", async () => {
    const ran: string[] = [];
    let release!: () => void;
    const slowGate = new Promise<void>((resolve) => (release = resolve));
    const app = await testApp(
      (inngest) => [
        inngest.createFunction({ id: "race", triggers: [{ event: "t/race" }] }, async ({ step, group }) => {
          const winner = await group.parallel({ mode: "race" }, () =>
            Promise.race([step.run("fast", () => (ran.push("fast"), "fast")), step.run("slow", async () => (await slowGate, ran.push("slow"), "slow"))]),
          );
          return step.run("after", () => (ran.push("after"), `after ${winner}`));
        }),
      ],
      {
        // The call that asks what comes after the race gets a maintenance page; the slow branch ends meanwhile.
        interfere: (call) => {
          if (call.n === 1 || new URL(call.request.url).searchParams.get("stepId") !== "step" || ran.includes("slow")) return undefined;
          release();
          return hostileAnswer("html", call);
        },
      },
    );
    const run = app.run("race");
    expect(await run.drive()).toEqual({ type: "completed", output: "after fast" });
    expect(run.outcomes[0]).toMatchObject({ type: "retry" });
    expect(ran.filter((name) => name === "slow")).toEqual(["slow"]);
  });
});

describe("step.fetch", () => {
  it("reads no more of a response than a step's output may hold (4 MiB), and fails the step naming the limit", async () => {
    let huge: ReturnType<typeof lazyBody> | undefined;
    const app = await testApp((inngest) => [
      inngest.createFunction({ id: "fetch", retries: 0, triggers: [{ event: "t/fetch" }] }, async ({ step }) => {
        const response = await step.fetch("http://huge.test/");
        return (await response.text()).length;
      }),
    ]);
    const fetchHuge: typeof fetch = async () => {
      huge = lazyBody(64 * MiB, "", "x", { status: 200, headers: { "content-type": "text/plain" } });
      return huge.response;
    };
    const run = app.run("fetch", { retries: 0, executor: { fetch: fetchHuge } });
    const outcome = await run.drive();
    expect(outcome).toMatchObject({ type: "failed" });
    const fetched = [...run.steps.values()].find((step) => step.kind === "fetch");
    expect(fetched).toMatchObject({ status: "failed", error: { message: expect.stringMatching(/4 MiB/) } });
    expect(huge!.pulled()).toBeLessThanOrEqual(6 * MiB);
  });
});
