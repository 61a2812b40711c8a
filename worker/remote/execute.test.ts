/**
 * The executor of remote functions against the real `inngest` SDK, in process (its `inngest/edge`
 * handler answers the calls; worker/remote/testApp.ts), over generated programs of steps, sleeps,
 * parallel and race groups and steps that fail once, with invocations killed at generated points
 * (sdk/testing.ts's TestRun keeps the run as a RunObject does), some calls answered by something
 * other than the SDK (an HTML page, a gateway's JSON, a redirect, an answer cut short, 64 MiB, no answer), and
 * the run cancelled as the SDK reports a checkpoint. Whatever the program, the kills and the
 * answers: the run completes with the program's output (or, cancelled, no step body runs after
 * the cancel), and a step body runs again only when a kill or a lost answer cut it.
 */
import fc from "fast-check";
import { RetryAfterError } from "inngest";
import { describe, expect, it } from "vitest";
import type { TestRunOptions } from "../../sdk/testing.ts";
import { HOSTILE_ANSWERS, hostileAnswer, testApp, type HostileAnswer } from "./testApp.ts";

type Part =
  | { kind: "run"; value: number }
  | { kind: "flaky"; value: number }
  | { kind: "sleep"; seconds: 0 | 60 }
  /** Steps at once; the one at `flaky` (if any) fails its first attempt. */
  | { kind: "parallel"; values: number[]; flaky?: number }
  /** Steps raced (`group.parallel({ mode: "race" })`): the first to end gives the value, the others run on. */
  | { kind: "race"; values: number[] }
  /** The handler's own code between steps throws, the first time only. */
  | { kind: "hiccup" };

const partArb: fc.Arbitrary<Part> = fc.oneof(
  fc.record({ kind: fc.constant("run" as const), value: fc.integer({ min: 0, max: 99 }) }),
  fc.record({ kind: fc.constant("flaky" as const), value: fc.integer({ min: 0, max: 99 }) }),
  fc.record({ kind: fc.constant("sleep" as const), seconds: fc.constantFrom(0 as const, 60 as const) }),
  fc.record({ kind: fc.constant("parallel" as const), values: fc.array(fc.integer({ min: 0, max: 99 }), { minLength: 2, maxLength: 3 }), flaky: fc.option(fc.integer({ min: 0, max: 1 }), { nil: undefined }) }),
  fc.record({ kind: fc.constant("race" as const), values: fc.array(fc.integer({ min: 0, max: 99 }), { minLength: 2, maxLength: 3 }) }),
  fc.record({ kind: fc.constant("hiccup" as const) }),
);

/**
 * At most two hiccups in a stretch of the handler's code (between settled steps): a stretch's
 * failures (its hiccups and the answers not the SDK's) stay within the function's retries.
 */
function withinRetries(program: Part[]): boolean {
  let stretch = 0;
  for (const part of program) {
    stretch = part.kind === "hiccup" ? stretch + 1 : 0;
    if (stretch > 2) return false;
  }
  return true;
}

/** What the program returns: every step's value, in program order; a race's, one of its values. */
function expectedOutput(program: Part[]): unknown[] {
  return program.flatMap((part) => {
    if (part.kind === "parallel") return part.values;
    if (part.kind === "race") return [expect.toBeOneOf(part.values)];
    return part.kind === "run" || part.kind === "flaky" ? [part.value] : [];
  });
}

/**
 * The step names of a part, each with how many times its body runs without kills or lost answers:
 * at least and at most (a flaky one twice; a race's loser once at most: if its request failed, the
 * app, asked for it again, finishes the run instead, its handler being past the race).
 */
function stepsOf(part: Part, i: number): [name: string, min: number, max: number][] {
  if (part.kind === "run") return [[`s${i}`, 1, 1]];
  if (part.kind === "flaky") return [[`s${i}`, 2, 2]];
  if (part.kind === "parallel") return part.values.map((_, j) => [`p${i}.${j}`, part.flaky === j ? 2 : 1, part.flaky === j ? 2 : 1]);
  if (part.kind === "race") return part.values.map((_, j) => [`r${i}.${j}`, 0, 1]);
  return [];
}

/** What the network does to a run: answers calls (by number, 1 for the first) in the SDK's place, cancels the run at a checkpoint. */
interface Network {
  hostile?: Map<number, HostileAnswer>;
  /** The checkpoint (1 for the first) as which the run is cancelled. */
  cancelAt?: number;
}

/**
 * An app on the inngest SDK whose one function runs `program`, its run, and what happened: how often
 * each step body ran (and at which attempts), the hostile answers given, the bodies run when the run was cancelled.
 */
async function programRun(program: Part[], options: { checkpointing: boolean; retries?: 1 | 3 | 5; crash?: TestRunOptions["crash"]; network?: Network }) {
  const { checkpointing, retries = 3, network = {} } = options;
  const bodies = new Map<string, number>();
  /** The attempt each run of a step body saw (ctx.attempt). */
  const attempts = new Map<string, number[]>();
  const ran = (name: string) => {
    const n = (bodies.get(name) ?? 0) + 1;
    bodies.set(name, n);
    return n;
  };
  /** Step bodies run so far (the handler's own code between steps counts as `h<i>`, not a body). */
  const total = () => [...bodies].reduce((sum, [name, n]) => (name.startsWith("h") ? sum : sum + n), 0);
  const seen = { hostile: [] as HostileAnswer[], bodiesAtCancel: undefined as number | undefined };
  let run!: ReturnType<(typeof app)["run"]>;
  const app = await testApp(
    (inngest) => [
      inngest.createFunction({ id: "program", checkpointing, retries, triggers: [{ event: "prop/run" }] }, async ({ step, group, attempt }) => {
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
          if (part.kind === "race") out.push(await group.parallel({ mode: "race" }, () => Promise.race(part.values.map((value, j) => step.run(`r${i}.${j}`, body(`r${i}.${j}`, value, false))))));
          if (part.kind === "hiccup" && ran(`h${i}`) === 1) throw new Error("the handler's own code failed once");
        }
        return out;
      }),
    ],
    {
      id: "prop-app",
      interfere: (call) => {
        const kind = network.hostile?.get(call.n);
        if (!kind) return undefined;
        seen.hostile.push(kind);
        return hostileAnswer(kind, call);
      },
      onCheckpoint: (n) => {
        if (n !== network.cancelAt) return;
        seen.bodiesAtCancel = total();
        run.cancelled = true;
      },
    },
  );
  run = app.run("program", { retries, checkpointing, ...(options.crash ? { crash: options.crash } : {}) });
  return { app, run, bodies, attempts, seen, total };
}

describe("the remote executor, against the inngest SDK", () => {
  it("runs a sleep, a parallel group and a flaky step as the SDK plans them", async () => {
    const program: Part[] = [{ kind: "run", value: 1 }, { kind: "sleep", seconds: 60 }, { kind: "parallel", values: [2, 3] }, { kind: "flaky", value: 4 }];
    const { run, bodies } = await programRun(program, { checkpointing: false });
    expect(await run.drive()).toEqual({ type: "completed", output: [1, 2, 3, 4] });
    expect(Object.fromEntries(bodies)).toEqual({ s0: 1, "p2.0": 1, "p2.1": 1, s3: 2 });
    expect(run.step("s3")).toMatchObject({ status: "completed", attempts: 2 });
    expect(run.step("z1")).toMatchObject({ kind: "sleep" });
  });

  it("retries a step of a parallel group after its retry-after, telling it its attempt", async () => {
    const { run, attempts } = await programRun([{ kind: "parallel", values: [1, 2], flaky: 1 }], { checkpointing: false });
    expect(await run.drive()).toEqual({ type: "completed", output: [1, 2] });
    expect(attempts.get("p0.1")).toEqual([0, 1]);
    const step = run.step("p0.1")!;
    expect(step).toMatchObject({ status: "completed", attempts: 2 });
    expect(step.startedAt).toBeGreaterThanOrEqual(step.failedAttempts![0]!.endedAt + 1000);
  });

  it("gives a new step its own attempts after the handler's code failed (retries: 1)", async () => {
    const { run, attempts } = await programRun([{ kind: "run", value: 1 }, { kind: "hiccup" }, { kind: "flaky", value: 2 }], { checkpointing: false, retries: 1 });
    expect(await run.drive()).toEqual({ type: "completed", output: [1, 2] });
    expect(attempts.get("s2")).toEqual([0, 1]);
  });

  it("takes a sleep of 0 (the SDK writes its duration as an empty string)", async () => {
    const { run } = await programRun([{ kind: "sleep", seconds: 0 }, { kind: "run", value: 7 }], { checkpointing: false });
    expect(await run.drive()).toEqual({ type: "completed", output: [7] });
  });

  it("stores what the SDK checkpoints during a call once, in order, and the steps take one call", async () => {
    const { app, run } = await programRun([1, 2, 3, 4].map((value) => ({ kind: "run" as const, value })), { checkpointing: true });
    expect(await run.drive()).toEqual({ type: "completed", output: [1, 2, 3, 4] });
    expect([0, 1, 2, 3].map((i) => run.step(`s${i}`)?.seq)).toEqual([1, 2, 3, 4]);
    expect(run.saved.filter((record) => record.status === "completed")).toHaveLength(4);
    expect(app.calls()).toBe(1);
  });

  it("for any program, kills, answers not the SDK's and cancels at a checkpoint: the program's output (or nothing after the cancel), each step body once more at most per kill or lost answer, retries after their backoff", async () => {
    const tally = { killed: 0, ranAgain: 0, hostile: new Set<HostileAnswer>(), cancelled: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(partArb, { minLength: 1, maxLength: 6 }).filter(withinRetries),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 3 }),
        // At most two calls answered by something else: with two hiccups or a flaky step's own failure, within 5 retries.
        fc.uniqueArray(fc.record({ at: fc.integer({ min: 1, max: 10 }), kind: fc.constantFrom(...HOSTILE_ANSWERS) }), { maxLength: 2, selector: (entry) => entry.at }),
        fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        async (program, checkpointing, killAt, hostile, cancelAt) => {
          const network: Network = { hostile: new Map(hostile.map((entry) => [entry.at, entry.kind])), ...(cancelAt !== undefined ? { cancelAt } : {}) };
          // The first invocations die at the save numbered killAt[i].
          const crash: TestRunOptions["crash"] = (invocation) => (invocation < killAt.length ? { atSave: killAt[invocation]! } : undefined);
          const { run, bodies, attempts, seen, total } = await programRun(program, { checkpointing, retries: 5, crash, network });
          const outcome = await run.drive();
          const kills = run.outcomes.filter((o) => o.type === "crashed").length;
          // An answer cut short after its step ran loses that step's result: the body runs again.
          const lost = seen.hostile.filter((kind) => kind === "truncated").length;
          for (const kind of seen.hostile) tally.hostile.add(kind);
          tally.killed += kills;
          const what = `${JSON.stringify(program)}, checkpointing ${checkpointing}, ${kills} kills, answers ${JSON.stringify(seen.hostile)}, cancel at checkpoint ${cancelAt}`;
          if (seen.bodiesAtCancel !== undefined) {
            // Cancelled as a checkpoint came in: the SDK is stopped there, and no step body runs after it.
            tally.cancelled++;
            expect(outcome, what).toEqual({ type: "cancelled" });
            expect(total(), what).toBe(seen.bodiesAtCancel);
            return;
          }
          expect(outcome, what).toEqual({ type: "completed", output: expectedOutput(program) });
          for (const [i, part] of program.entries()) {
            for (const [name, min, max] of stepsOf(part, i)) {
              const times = bodies.get(name) ?? 0;
              expect(times, `${name} of ${what}`).toBeGreaterThanOrEqual(min);
              expect(times, `${name} of ${what}`).toBeLessThanOrEqual(max + kills + lost);
              if (times > max) tally.ranAgain++;
              // A step that failed ran again only after its retry was due, and knew it was a retry (a race's loser may wait for ever).
              const step = run.step(name);
              const lastFailure = step?.status === "completed" ? step.failedAttempts?.at(-1) : undefined;
              if (step && lastFailure) expect(step.startedAt, `${name} of ${what}`).toBeGreaterThanOrEqual(lastFailure.endedAt + 1000);
              // (A kill or a lost answer can lose the record of the failure: the retry then cannot know it is one.)
              if (min === 2 && kills === 0 && lost === 0) expect(attempts.get(name)!.at(-1), `${name} of ${what}`).toBeGreaterThanOrEqual(1);
            }
          }
        },
      ),
      { numRuns: 120 },
    );
    // The generated kills did land, and some cut a step after its body ran and before its result was stored;
    // every kind of answer not the SDK's was given, and some runs were cancelled as the SDK checkpointed.
    expect(tally.killed).toBeGreaterThan(10);
    expect(tally.ranAgain).toBeGreaterThan(0);
    expect([...tally.hostile].sort()).toEqual([...HOSTILE_ANSWERS].sort());
    // (A handful of 120 programs are cancelled as they checkpoint: 3 to 12 seen; more than none is what a run can promise.)
    expect(tally.cancelled).toBeGreaterThan(0);
  }, 240_000);
});
