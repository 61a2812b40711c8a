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
import { TestRun } from "../../sdk/testing.ts";
import { executeRemoteRun, type AppCaller } from "./execute.ts";
import { RemoteFunction } from "./function.ts";
import { callUrl, readAnswer } from "./transport.ts";
import { wireFunctionSchema } from "./wire.ts";

type Part = { kind: "run"; value: number } | { kind: "flaky"; value: number } | { kind: "sleep" } | { kind: "parallel"; values: number[] };

const partArb: fc.Arbitrary<Part> = fc.oneof(
  fc.record({ kind: fc.constant("run" as const), value: fc.integer({ min: 0, max: 99 }) }),
  fc.record({ kind: fc.constant("flaky" as const), value: fc.integer({ min: 0, max: 99 }) }),
  fc.record({ kind: fc.constant("sleep" as const) }),
  fc.record({ kind: fc.constant("parallel" as const), values: fc.array(fc.integer({ min: 0, max: 99 }), { minLength: 2, maxLength: 3 }) }),
);

/** What the program returns: every step's value, in program order. */
function expectedOutput(program: Part[]): number[] {
  return program.flatMap((part) => (part.kind === "sleep" ? [] : part.kind === "parallel" ? part.values : [part.value]));
}

/** An app on the inngest SDK whose one function runs `program`; answers it with the count of each step body's runs. */
async function appFor(program: Part[], checkpointing: boolean) {
  const bodies = new Map<string, number>();
  const ran = (name: string) => {
    const n = (bodies.get(name) ?? 0) + 1;
    bodies.set(name, n);
    return n;
  };
  const inngest = new Inngest({ id: "prop-app", isDev: true, logger: { info() {}, warn() {}, error() {}, debug() {} } });
  const fn = inngest.createFunction({ id: "program", checkpointing, retries: 3, triggers: [{ event: "prop/run" }] }, async ({ step }) => {
    const out: number[] = [];
    for (const [i, part] of program.entries()) {
      if (part.kind === "run") out.push(await step.run(`s${i}`, () => (ran(`s${i}`), part.value)));
      if (part.kind === "flaky") {
        out.push(
          await step.run(`s${i}`, () => {
            if (ran(`s${i}`) === 1) throw new RetryAfterError("fails once", "1s");
            return part.value;
          }),
        );
      }
      if (part.kind === "sleep") await step.sleep(`z${i}`, "1m");
      if (part.kind === "parallel") out.push(...(await Promise.all(part.values.map((value, j) => step.run(`p${i}.${j}`, () => (ran(`p${i}.${j}`), value))))));
    }
    return out;
  });
  const handler = serve({ client: inngest, functions: [fn] });
  // The edge handler resolves a request's URL against its Host header.
  const url = "http://app.test/api/inngest";
  // The function as the SDK's own sync describes it.
  const sync = await handler(new Request(url, { method: "PUT", headers: { host: "app.test", "x-inngest-sync-kind": "in_band", "content-type": "application/json" }, body: JSON.stringify({ url }) }));
  const wire = wireFunctionSchema.parse(((await sync.json()) as { functions: unknown[] }).functions[0]);
  const call: AppCaller = async (target, stepId, body) => {
    const response = await handler(new Request(callUrl(target, stepId), { method: "POST", headers: { host: "app.test", "content-type": "application/json" }, body: JSON.stringify(body) }));
    return readAnswer(response, await response.text());
  };
  return { remote: new RemoteFunction("prop-app", wire), call, bodies };
}

/** The event the program's function is triggered by (the SDK checks a call's event against the function's triggers). */
const trigger = () => ({ id: "01PROPEVENT", name: "prop/run", data: {}, ts: Date.now() });

describe("the remote executor, against the inngest SDK", () => {
  it("runs a sleep, a parallel group and a flaky step as the SDK plans them", async () => {
    const program: Part[] = [{ kind: "run", value: 1 }, { kind: "sleep" }, { kind: "parallel", values: [2, 3] }, { kind: "flaky", value: 4 }];
    const { remote, call, bodies } = await appFor(program, false);
    const run = new TestRun(() => undefined, { events: [trigger()], retries: 3, quietTurns: 100_000, execute: (input, host) => executeRemoteRun(remote, input, host, { call }) });
    expect(await run.drive()).toEqual({ type: "completed", output: [1, 2, 3, 4] });
    expect(Object.fromEntries(bodies)).toEqual({ s0: 1, "p2.0": 1, "p2.1": 1, s3: 2 });
    expect(run.step("s3")).toMatchObject({ status: "completed", attempts: 2 });
    expect(run.step("z1")).toMatchObject({ kind: "sleep" });
  });

  it("for any program and any kills: the program's output, each step body once more at most per kill", async () => {
    let killed = 0;
    let ranAgain = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(partArb, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 3 }),
        async (program, checkpointing, killAt) => {
          const { remote, call, bodies } = await appFor(program, checkpointing);
          const run = new TestRun(() => undefined, {
            events: [trigger()],
            retries: 3,
            quietTurns: 100_000,
            // The first invocations die at the save numbered killAt[i].
            crash: (invocation) => (invocation < killAt.length ? { atSave: killAt[invocation]! } : undefined),
            execute: (input, host) => executeRemoteRun(remote, input, host, { call }),
          });
          const outcome = await run.drive();
          expect(outcome).toEqual({ type: "completed", output: expectedOutput(program) });
          const kills = run.outcomes.filter((o) => o.type === "crashed").length;
          killed += kills;
          for (const [i, part] of program.entries()) {
            const names = part.kind === "parallel" ? part.values.map((_, j) => `p${i}.${j}`) : part.kind === "sleep" ? [] : [`s${i}`];
            const planned = part.kind === "flaky" ? 2 : 1;
            for (const name of names) {
              const times = bodies.get(name) ?? 0;
              expect(times, `${name} of ${JSON.stringify(program)}`).toBeGreaterThanOrEqual(planned);
              expect(times, `${name} of ${JSON.stringify(program)}, ${kills} kills`).toBeLessThanOrEqual(planned + kills);
              if (times > planned) ranAgain++;
            }
          }
        },
      ),
      { numRuns: 60 },
    );
    // The generated kills did land, and some cut a step after its body ran and before its result was stored.
    expect(killed).toBeGreaterThan(10);
    expect(ranAgain).toBeGreaterThan(0);
  }, 120_000);
});
