/**
 * The executor of remote functions against the real `inngest` SDK, in process (its `inngest/edge`
 * handler answers the calls), over generated programs of steps, sleeps, parallel groups and steps
 * that fail once, with invocations killed at generated points (sdk/testing.ts's TestRun keeps the
 * run as a RunObject does). Whatever the program and the kills: the run completes with the
 * program's output, and a step body runs again only when a kill cut it.
 */
import fc from "fast-check";
import { Inngest, RetryAfterError } from "inngest";
import { serve } from "inngest/edge";
import { describe, expect, it } from "vitest";
import { TestRun, type TestRunOptions } from "../../sdk/testing.ts";
import { executeRemoteRun } from "./execute.ts";
import { RemoteFunction } from "./function.ts";
import { CallCheckpoints, checkpointAnswer } from "./checkpoints.ts";
import { wireFunctionSchema, type Op } from "./wire.ts";

type Part =
  | { kind: "run"; value: number }
  | { kind: "flaky"; value: number }
  | { kind: "sleep"; seconds: 0 | 60 }
  /** Steps at once; the one at `flaky` (if any) fails its first attempt. */
  | { kind: "parallel"; values: number[]; flaky?: number }
  /** The handler's own code between steps throws, the first time only. */
  | { kind: "hiccup" };

const partArb: fc.Arbitrary<Part> = fc.oneof(
  fc.record({ kind: fc.constant("run" as const), value: fc.integer({ min: 0, max: 99 }) }),
  fc.record({ kind: fc.constant("flaky" as const), value: fc.integer({ min: 0, max: 99 }) }),
  fc.record({ kind: fc.constant("sleep" as const), seconds: fc.constantFrom(0 as const, 60 as const) }),
  fc.record({ kind: fc.constant("parallel" as const), values: fc.array(fc.integer({ min: 0, max: 99 }), { minLength: 2, maxLength: 3 }), flaky: fc.option(fc.integer({ min: 0, max: 1 }), { nil: undefined }) }),
  fc.record({ kind: fc.constant("hiccup" as const) }),
);

/** What the program returns: every step's value, in program order. */
function expectedOutput(program: Part[]): number[] {
  return program.flatMap((part) => (part.kind === "parallel" ? part.values : part.kind === "run" || part.kind === "flaky" ? [part.value] : []));
}

/** The step names of a part, each with how many times its body must run (a flaky one twice). */
function stepsOf(part: Part, i: number): [string, number][] {
  if (part.kind === "run") return [[`s${i}`, 1]];
  if (part.kind === "flaky") return [[`s${i}`, 2]];
  if (part.kind === "parallel") return part.values.map((_, j) => [`p${i}.${j}`, part.flaky === j ? 2 : 1]);
  return [];
}

/** An app on the inngest SDK whose one function runs `program`; answers it with the count of each step body's runs. */
async function appFor(program: Part[], checkpointing: boolean, retries: 1 | 3 = 3) {
  const bodies = new Map<string, number>();
  /** The attempt each run of a step body saw (ctx.attempt). */
  const attempts = new Map<string, number[]>();
  const ran = (name: string) => {
    const n = (bodies.get(name) ?? 0) + 1;
    bodies.set(name, n);
    return n;
  };
  const board = new CallCheckpoints();
  // The SDK's calls back to the executor (its checkpoints) reach the board, as POST /v1/checkpoint/:runId/async does.
  const executorApi: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!url.pathname.startsWith("/v1/checkpoint/")) return new Response("{}", { status: 404 });
    const { qi_id, steps } = JSON.parse(String(init?.body)) as { qi_id: string; steps: Op[] };
    const { status, body } = checkpointAnswer(await board.deliver(qi_id, steps));
    return Response.json(body, { status });
  };
  const inngest = new Inngest({ id: "prop-app", isDev: true, baseUrl: "http://executor.test", fetch: executorApi, logger: { info() {}, warn() {}, error() {}, debug() {} } });
  const fn = inngest.createFunction({ id: "program", checkpointing, retries, triggers: [{ event: "prop/run" }] }, async ({ step, attempt }) => {
    const out: number[] = [];
    const body = (name: string, value: number, flaky: boolean) => () => {
      attempts.set(name, [...(attempts.get(name) ?? []), attempt]);
      if (ran(name) === 1 && flaky) throw new RetryAfterError("fails once", "1s");
      return value;
    };
    for (const [i, part] of program.entries()) {
      if (part.kind === "run" || part.kind === "flaky") out.push(await step.run(`s${i}`, body(`s${i}`, part.value, part.kind === "flaky")));
      if (part.kind === "sleep") await step.sleep(`z${i}`, part.seconds * 1000);
      if (part.kind === "parallel") out.push(...(await Promise.all(part.values.map((value, j) => step.run(`p${i}.${j}`, body(`p${i}.${j}`, value, part.flaky === j))))));
      if (part.kind === "hiccup" && ran(`h${i}`) === 1) throw new Error("the handler's own code failed once");
    }
    return out;
  });
  const handler = serve({ client: inngest, functions: [fn] });
  // The edge handler resolves a request's URL against its Host header.
  const url = "http://app.test/api/inngest";
  // The function as the SDK's own sync describes it.
  const sync = await handler(new Request(url, { method: "PUT", headers: { host: "app.test", "x-inngest-sync-kind": "in_band", "content-type": "application/json" }, body: JSON.stringify({ url }) }));
  const wire = wireFunctionSchema.parse(((await sync.json()) as { functions: unknown[] }).functions[0]);
  let calls = 0;
  // The executor's calls reach the SDK's handler in process, through the executor's own transport.
  const transport: typeof fetch = async (input, init) => {
    calls++;
    return handler(new Request(input instanceof Request ? input : String(input), { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers)), host: "app.test" } }));
  };
  return { remote: new RemoteFunction("prop-app", wire), transport, calls: () => calls, board, bodies, attempts };
}

/** The event the program's function is triggered by (the SDK checks a call's event against the function's triggers). */
const trigger = () => ({ id: "01PROPEVENT", name: "prop/run", data: {}, ts: Date.now() });

/** A run of the program's function, kept as a RunObject keeps it, executed by the remote executor. */
function runOf(app: Awaited<ReturnType<typeof appFor>>, options: { retries?: number; checkpointing?: boolean; crash?: TestRunOptions["crash"] } = {}) {
  return new TestRun(() => undefined, {
    events: [trigger()],
    retries: options.retries ?? 3,
    quietTurns: 100_000,
    ...(options.crash ? { crash: options.crash } : {}),
    execute: (input, host) => executeRemoteRun(app.remote, input, host, { transport: app.transport, ...(options.checkpointing ? { checkpoints: app.board } : {}) }),
  });
}

describe("the remote executor, against the inngest SDK", () => {
  it("runs a sleep, a parallel group and a flaky step as the SDK plans them", async () => {
    const program: Part[] = [{ kind: "run", value: 1 }, { kind: "sleep", seconds: 60 }, { kind: "parallel", values: [2, 3] }, { kind: "flaky", value: 4 }];
    const app = await appFor(program, false);
    const run = runOf(app);
    expect(await run.drive()).toEqual({ type: "completed", output: [1, 2, 3, 4] });
    expect(Object.fromEntries(app.bodies)).toEqual({ s0: 1, "p2.0": 1, "p2.1": 1, s3: 2 });
    expect(run.step("s3")).toMatchObject({ status: "completed", attempts: 2 });
    expect(run.step("z1")).toMatchObject({ kind: "sleep" });
  });

  it("retries a step of a parallel group after its retry-after, telling it its attempt", async () => {
    const app = await appFor([{ kind: "parallel", values: [1, 2], flaky: 1 }], false);
    const run = runOf(app);
    expect(await run.drive()).toEqual({ type: "completed", output: [1, 2] });
    expect(app.attempts.get("p0.1")).toEqual([0, 1]);
    const step = run.step("p0.1")!;
    expect(step).toMatchObject({ status: "completed", attempts: 2 });
    expect(step.startedAt).toBeGreaterThanOrEqual(step.failedAttempts![0]!.endedAt + 1000);
  });

  it("gives a new step its own attempts after the handler's code failed (retries: 1)", async () => {
    const app = await appFor([{ kind: "run", value: 1 }, { kind: "hiccup" }, { kind: "flaky", value: 2 }], false, 1);
    const run = runOf(app, { retries: 1 });
    expect(await run.drive()).toEqual({ type: "completed", output: [1, 2] });
    expect(app.attempts.get("s2")).toEqual([0, 1]);
  });

  it("takes a sleep of 0 (the SDK writes its duration as an empty string)", async () => {
    const app = await appFor([{ kind: "sleep", seconds: 0 }, { kind: "run", value: 7 }], false);
    expect(await runOf(app).drive()).toEqual({ type: "completed", output: [7] });
  });

  it("stores what the SDK checkpoints during a call once, in order, and the steps take one call", async () => {
    const app = await appFor([1, 2, 3, 4].map((value) => ({ kind: "run" as const, value })), true);
    const run = runOf(app, { checkpointing: true });
    expect(await run.drive()).toEqual({ type: "completed", output: [1, 2, 3, 4] });
    expect([0, 1, 2, 3].map((i) => run.step(`s${i}`)?.seq)).toEqual([1, 2, 3, 4]);
    expect(run.saved.filter((record) => record.status === "completed")).toHaveLength(4);
    expect(app.calls()).toBe(1);
  });

  it("for any program and any kills: the program's output, each step body once more at most per kill, retries after their backoff", async () => {
    let killed = 0;
    let ranAgain = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(partArb, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 3 }),
        async (program, checkpointing, killAt) => {
          const app = await appFor(program, checkpointing);
          // The first invocations die at the save numbered killAt[i].
          const run = runOf(app, { checkpointing, crash: (invocation) => (invocation < killAt.length ? { atSave: killAt[invocation]! } : undefined) });
          const outcome = await run.drive();
          expect(outcome).toEqual({ type: "completed", output: expectedOutput(program) });
          const kills = run.outcomes.filter((o) => o.type === "crashed").length;
          killed += kills;
          for (const [i, part] of program.entries()) {
            for (const [name, planned] of stepsOf(part, i)) {
              const times = app.bodies.get(name) ?? 0;
              const what = `${name} of ${JSON.stringify(program)}, checkpointing ${checkpointing}, ${kills} kills`;
              expect(times, what).toBeGreaterThanOrEqual(planned);
              expect(times, what).toBeLessThanOrEqual(planned + kills);
              if (times > planned) ranAgain++;
              // A step that failed ran again only after its retry was due, and knew it was a retry.
              const step = run.step(name)!;
              const lastFailure = step.failedAttempts?.at(-1);
              if (lastFailure) expect(step.startedAt, what).toBeGreaterThanOrEqual(lastFailure.endedAt + 1000);
              // (A kill can lose the record of the failure: the retry then cannot know it is one.)
              if (planned === 2 && kills === 0) expect(app.attempts.get(name)!.at(-1), what).toBeGreaterThanOrEqual(1);
            }
          }
        },
      ),
      { numRuns: 80 },
    );
    // The generated kills did land, and some cut a step after its body ran and before its result was stored.
    expect(killed).toBeGreaterThan(10);
    expect(ranAgain).toBeGreaterThan(0);
  }, 180_000);
});
