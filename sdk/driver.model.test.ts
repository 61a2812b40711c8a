import fc from "fast-check";
import { setImmediate } from "node:timers";
import { describe, expect, it } from "vitest";
import type { HandlerContext, RunOutcome, StepRecord } from "./driver.ts";
import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { RetryAfterError } from "./errors/RetryAfterError.ts";
import { StepError } from "./errors/StepError.ts";
import { sendEventId, StepIdAllocator } from "./step.ts";
import { FakeClock, TestRun, type CrashPoint, type InvocationOutcome } from "./testing.ts";

/*
 * A model test of the driver. Handler programs from a small language (steps, sleeps, sends, flaky
 * code and I/O outside steps, Promise.all / race / any) run once without interruption and once
 * with crashes, early replays and slow storage. Each run must agree with a pure evaluation of the
 * program given the winners its races took, give every race the same winner in every invocation,
 * give every step call its own result, run a body no more than the attempts it needs plus one per
 * crash that cut it, never run a cut body in the recovering invocation, and store each sent event
 * once. Both runs end alike when their races went alike; without races they store the same steps.
 * MODEL_RUNS=20000 runs more cases.
 */

// ---------------------------------------------------------------- the language

type FailMode = "error" | "retryAfter" | "nonRetriable";

type Node =
  /** A step.run whose body takes `yields` macrotasks and fails its first `fail` attempts. */
  | { t: "run"; id: string; yields: number; fail: number; mode: FailMode; retryAfterMs: number; caught: boolean }
  | { t: "sleep"; id: string; ms: number }
  | { t: "send"; id: string; count: number }
  /** Code outside steps that fails the first `k` times it runs (a flaky call). */
  | { t: "throw"; k: number }
  /** Code outside steps that awaits `turns` macrotasks (I/O outside a step). */
  | { t: "delay"; turns: number }
  | { t: "all"; branches: Program[] }
  | { t: "race"; any: boolean; branches: Program[] };

type Program = Node[];

const RUN_ID = "model-run";
const RETRIES = 20;

/** A short deterministic digest: what a program computed so far. */
function mix(acc: string, value: string): string {
  let hash = 0x811c9dc5;
  const text = `${acc}|${value}`;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}

const stepValue = (id: string, input: string) => mix(input, `v:${id}`);

// ---------------------------------------------------------------- running a program for real

interface Execution {
  invocation: number;
  name: string;
  node: string;
  attempt: number;
}

/** What one run of a program observed, outside the host. */
class Observations {
  invocation = 0;
  readonly executions: Execution[] = [];
  /** Race decisions: invocation, race node, decision ("ok 1", "err 0", "none"). */
  readonly decisions: { invocation: number; node: string; decision: string }[] = [];
  readonly throwCalls = new Map<string, number>();
  /** Invocations that died: their handler code, still awaiting a macrotask, must not go on. */
  readonly dead = new Set<number>();
  /** Things that must never happen, as text, for a readable failure. */
  readonly violations: string[] = [];
}

class Interpreter {
  private readonly ids = new StepIdAllocator();
  private readonly invocation: number;

  constructor(
    private readonly ctx: HandlerContext,
    private readonly seen: Observations,
  ) {
    this.invocation = seen.invocation;
  }

  async program(program: Program, path: string, input: string): Promise<string> {
    let acc = input;
    for (const [i, node] of program.entries()) acc = await this.node(node, `${path}.${i}`, acc);
    return acc;
  }

  private async node(node: Node, path: string, acc: string): Promise<string> {
    const { step } = this.ctx;
    switch (node.t) {
      case "run": {
        const name = this.ids.next(node.id);
        const body = () => {
          const attempt = this.ctx.attempt;
          this.seen.executions.push({ invocation: this.invocation, name, node: path, attempt });
          const finish = () => {
            if (node.mode === "nonRetriable") throw new NonRetriableError(`${name} refuses`);
            if (attempt < node.fail) throw node.mode === "retryAfter" ? new RetryAfterError(`${name} later`, node.retryAfterMs) : new Error(`${name} flaked`);
            return stepValue(node.id, acc);
          };
          if (node.yields === 0) return finish();
          return (async () => {
            for (let y = 0; y < node.yields; y++) await new Promise((resolve) => setImmediate(resolve));
            if (this.ctx.attempt !== attempt) this.seen.violations.push(`step ${name}: attempt changed inside its body`);
            return finish();
          })();
        };
        let value: string;
        try {
          value = await step.run(node.id, body);
        } catch (err) {
          if (!(err instanceof StepError) || !node.caught) throw err;
          return mix(acc, "caught");
        }
        if (value !== stepValue(node.id, acc)) this.seen.violations.push(`invocation ${this.invocation}: step ${name} at ${path} got ${value}, not its own result`);
        return mix(acc, value);
      }
      case "sleep":
        this.ids.next(node.id);
        await step.sleep(node.id, node.ms);
        return mix(acc, "slept");
      case "send": {
        const name = this.ids.next(node.id);
        const events = Array.from({ length: node.count }, (_, i) => ({ name: `model/${node.id}`, data: { acc, i } }));
        const { ids } = await step.sendEvent(node.id, events);
        const expected = events.map((_, i) => sendEventId(RUN_ID, name, i));
        if (JSON.stringify(ids) !== JSON.stringify(expected)) this.seen.violations.push(`step ${name}: ids ${ids.join()} are not the deterministic ${expected.join()}`);
        return mix(acc, `sent${ids.length}`);
      }
      case "delay":
        for (let y = 0; y < node.turns; y++) {
          await new Promise((resolve) => setImmediate(resolve));
          // A dead isolate runs nothing: what its code awaited never comes back.
          if (this.seen.dead.has(this.invocation)) await new Promise(() => {});
        }
        return acc;
      case "throw": {
        const calls = (this.seen.throwCalls.get(path) ?? 0) + 1;
        this.seen.throwCalls.set(path, calls);
        if (calls <= node.k) throw new Error(`flaky ${path}`);
        return acc;
      }
      case "all": {
        const results = await Promise.all(node.branches.map((branch, j) => this.program(branch, `${path}.${j}`, mix(acc, `b${j}`))));
        return mix(acc, results.join("|"));
      }
      case "race": {
        const racers = node.branches.map((branch, j) =>
          this.program(branch, `${path}.${j}`, mix(acc, `b${j}`)).then(
            (value) => ({ j, value }),
            (error: unknown) => Promise.reject({ j, error }),
          ),
        );
        const record = (decision: string) => this.seen.decisions.push({ invocation: this.invocation, node: path, decision });
        try {
          const { j, value } = await (node.any ? Promise.any(racers) : Promise.race(racers));
          record(`ok ${j}`);
          return mix(acc, `won${j}:${value}`);
        } catch (err) {
          if (err instanceof AggregateError) {
            record("none");
            throw new NonRetriableError("every branch of Promise.any failed");
          }
          const { j, error } = err as { j: number; error: unknown };
          record(`err ${j}`);
          throw error;
        }
      }
    }
  }
}

function handlerFor(program: Program, seen: Observations) {
  return (ctx: HandlerContext) => new Interpreter(ctx, seen).program(program, "", "seed");
}

// ---------------------------------------------------------------- the pure evaluation

type Pure = { ok: true; value: string } | { ok: false };

/** What the program computes given the winners its races took (from `decisions`). */
function evaluate(program: Program, path: string, input: string, decisions: Map<string, string>): Pure {
  let acc = input;
  for (const [i, node] of program.entries()) {
    const here = `${path}.${i}`;
    switch (node.t) {
      case "run":
        if (node.mode === "nonRetriable") {
          if (!node.caught) return { ok: false };
          acc = mix(acc, "caught");
        } else acc = mix(acc, stepValue(node.id, acc));
        break;
      case "sleep":
        acc = mix(acc, "slept");
        break;
      case "send":
        acc = mix(acc, `sent${node.count}`);
        break;
      case "throw":
      case "delay":
        break;
      case "all": {
        const results = node.branches.map((branch, j) => evaluate(branch, `${here}.${j}`, mix(acc, `b${j}`), decisions));
        if (results.some((r) => !r.ok)) return { ok: false };
        acc = mix(acc, results.map((r) => (r as { value: string }).value).join("|"));
        break;
      }
      case "race": {
        const decision = decisions.get(here);
        if (decision === undefined) throw new Error(`race ${here} was never decided`);
        if (decision === "none") {
          if (node.branches.some((branch, j) => evaluate(branch, `${here}.${j}`, mix(acc, `b${j}`), decisions).ok)) throw new Error(`race ${here}: Promise.any failed though a branch succeeds`);
          return { ok: false };
        }
        const [kind, index] = decision.split(" ") as [string, string];
        const j = Number(index);
        const result = evaluate(node.branches[j]!, `${here}.${j}`, mix(acc, `b${j}`), decisions);
        if (result.ok !== (kind === "ok")) throw new Error(`race ${here}: decision ${decision} but the branch ${result.ok ? "succeeds" : "fails"}`);
        if (!result.ok) return result;
        acc = mix(acc, `won${j}:${result.value}`);
      }
    }
  }
  return { ok: true, value: acc };
}

/** Body executions a run node needs without crashes. */
function needed(node: Node): number {
  return node.t === "run" ? (node.mode === "nonRetriable" ? 1 : node.fail + 1) : 0;
}

function nodeAt(program: Program, path: string): Node {
  const indexes = path.split(".").slice(1).map(Number);
  let node = program[indexes[0]!]!;
  for (let i = 1; i < indexes.length; i += 2) node = (node as { branches: Program[] }).branches[indexes[i]!]![indexes[i + 1]!]!;
  return node;
}

const hasRace = (program: Program): boolean => program.some((node) => node.t === "race" || (node.t === "all" && node.branches.some(hasRace)));

// ---------------------------------------------------------------- driving a run, with crashes

interface Plan {
  /** Crashes, each `gap` clean invocations after the previous one. */
  crashes: { gap: number; point: CrashPoint }[];
  /** After a suspension at invocation i, replay early (nothing due) if extras[i]. */
  extras: boolean[];
  /** Slow storage: a save takes up to this many turns (by a digest of the record). */
  saveTurns: number;
}

interface RunReport {
  run: TestRun;
  seen: Observations;
  outcome: RunOutcome;
  outcomes: InvocationOutcome[];
  /** Per invocation: whether it crashed, and the saves it made. */
  invocations: { crashed: boolean; recovering: boolean; saves: StepRecord[] }[];
}

async function runProgram(program: Program, plan: Plan): Promise<RunReport> {
  // Code that awaits macrotasks may get further in an early replay than in the invocation before
  // (which suspended while it waited): that replay is not a no-op, and need not be.
  const hasDelay = program.some((node) => holds(node, "delay"));
  const seen = new Observations();
  const saveTurns = (record: StepRecord) => parseInt(mix(record.name, record.status), 16) % (plan.saveTurns + 1);
  const run = new TestRun(handlerFor(program, seen), { runId: RUN_ID, retries: RETRIES, stepTimeoutMs: 15 * 60_000, clock: new FakeClock(), saveTurns });
  const invocations: RunReport["invocations"] = [];
  const crashAt = new Map<number, CrashPoint>();
  let at = -1;
  for (const crash of plan.crashes) crashAt.set((at += crash.gap + 1), crash.point);
  let recovering = false;

  const invoke = async (crash?: CrashPoint) => {
    seen.invocation = invocations.length;
    const before = run.saved.length;
    const outcome = await run.invoke(crash);
    invocations.push({ crashed: outcome.type === "crashed", recovering, saves: run.saved.slice(before) });
    if (outcome.type === "crashed") seen.dead.add(seen.invocation);
    recovering = outcome.type === "crashed";
    return outcome;
  };

  for (let i = 0; i < 80; i++) {
    const outcome = await invoke(crashAt.get(i));
    if (outcome.type === "crashed") {
      run.clock.advance(10_000);
      continue;
    }
    const index = invocations.length - 1;
    if (outcome.type === "retry" && !/^flaky /.test(outcome.error.message)) seen.violations.push(`invocation ${index} failed outside steps: ${outcome.error.name}: ${outcome.error.message}`);
    if (outcome.type !== "suspended" && outcome.type !== "retry") return { run, seen, outcome, outcomes: run.outcomes, invocations };
    if (outcome.type === "suspended" && plan.extras[i] && !hasDelay && outcome.wakeAt > run.clock.now()) {
      // An invocation with nothing due replays to the same suspension and does nothing else.
      const executions = seen.executions.length;
      const extra = await invoke();
      if (JSON.stringify(extra) !== JSON.stringify(outcome)) seen.violations.push(`early replay after invocation ${index} answered ${JSON.stringify(extra)}, not ${JSON.stringify(outcome)}`);
      if (invocations.at(-1)!.saves.length > 0) seen.violations.push(`early replay after invocation ${index} saved ${invocations.at(-1)!.saves.map((s) => s.name).join()}`);
      if (seen.executions.length > executions) seen.violations.push(`early replay after invocation ${index} ran bodies`);
    }
    run.clock.advanceTo(outcome.wakeAt);
  }
  throw new Error("the run did not end within 80 invocations");
}

// ---------------------------------------------------------------- the properties

function checkRun(program: Program, report: RunReport, label: string): { decisions: Map<string, string> } {
  const { seen, run, invocations } = report;
  const problems = [...seen.violations];

  // Every invocation that saw a race settle saw the same winner.
  const decisions = new Map<string, string>();
  for (const { node, decision, invocation } of seen.decisions) {
    const first = decisions.get(node);
    if (first === undefined) decisions.set(node, decision);
    else if (first !== decision) problems.push(`race ${node}: ${first} at first, ${decision} in invocation ${invocation}`);
  }

  // The outcome is what the program computes given those winners.
  let expected: Pure | undefined;
  try {
    expected = evaluate(program, "", "seed", decisions);
  } catch (err) {
    if (report.outcome.type === "completed") problems.push(`cannot evaluate: ${(err as Error).message}`);
  }
  if (expected?.ok === true && JSON.stringify(report.outcome) !== JSON.stringify({ type: "completed", output: expected.value })) {
    problems.push(`outcome ${JSON.stringify(report.outcome)}, expected output ${expected.value}`);
  }
  if (expected?.ok === false && report.outcome.type !== "failed") problems.push(`outcome ${report.outcome.type}, expected failed`);
  // A run fails only by a step that fails for good (or every branch of a Promise.any).
  if (report.outcome.type === "failed" && !["StepError", "NonRetriableError"].includes(report.outcome.error.name)) {
    problems.push(`failed with ${report.outcome.error.name}: ${report.outcome.error.message}`);
  }

  // A name always belongs to the same step call; a body runs at most once per invocation.
  const nodeOf = new Map<string, string>();
  const ranIn = new Set<string>();
  for (const execution of seen.executions) {
    const node = nodeOf.get(execution.name) ?? execution.node;
    nodeOf.set(execution.name, node);
    if (node !== execution.node) problems.push(`step ${execution.name} ran for ${node} and for ${execution.node}`);
    const key = `${execution.invocation}/${execution.name}`;
    if (ranIn.has(key)) problems.push(`step ${execution.name} ran twice in invocation ${execution.invocation}`);
    ranIn.add(key);
  }

  // Each execution is stored, except in an invocation that crashed (the crash cut it).
  const stored = new Map<string, number>();
  const cut: Execution[] = [];
  for (const execution of seen.executions) {
    const invocation = invocations[execution.invocation]!;
    const saved = invocation.saves.some((s) => s.name === execution.name && s.attempts === execution.attempt + 1 && s.error?.name !== "RuntimeDiedError");
    if (saved) stored.set(execution.name, (stored.get(execution.name) ?? 0) + 1);
    else if (invocation.crashed) cut.push(execution);
    else problems.push(`step ${execution.name} attempt ${execution.attempt} ran in invocation ${execution.invocation} and was not stored`);
  }
  // Bodies whose results were stored ran no more than the attempts they need.
  for (const [name, count] of stored) {
    const need = needed(nodeAt(program, nodeOf.get(name)!));
    if (count > need) problems.push(`step ${name} was stored from ${count} executions; it needs ${need}`);
  }
  // So a body ran at most once per attempt it needs, plus once per crash that cut it (a body runs
  // once per invocation at most). A recovering invocation does not run again what the crash cut:
  // it counts a failed attempt and schedules another.
  // The driver takes the steps the dead invocation had running to be those the replay reaches
  // without a result before it first stands still. So a cut step the recovering invocation does
  // not reach (its path now waits behind a retry) gets no failed attempt and later runs as the
  // same attempt again, which is within the bound; and one it reaches only after code outside
  // steps awaited I/O (a delay) may run again at once, once other cut steps were counted.
  const delays = program.some((node) => holds(node, "delay"));
  for (const execution of delays ? [] : cut) {
    if (seen.executions.some((e) => e.name === execution.name && e.invocation === execution.invocation + 1)) {
      problems.push(`step ${execution.name}, cut by the crash of invocation ${execution.invocation}, ran again in the recovering invocation`);
    }
  }

  // Sent events are stored once, with the step that sent them. (That each call got its own
  // result is checked as the handler gets it.)
  const eventIds = run.sentEvents.map((event) => event.id);
  if (new Set(eventIds).size !== eventIds.length) problems.push(`an event was stored twice: ${eventIds.join()}`);
  for (const record of run.steps.values()) {
    if (record.kind === "sendEvent" && record.status === "completed") {
      for (const id of (record.output as { ids: string[] }).ids) if (!eventIds.includes(id)) problems.push(`step ${record.name} returned id ${id} that was not stored`);
    }
  }

  if (problems.length > 0) throw new Error(`${label} run:\n  ${problems.join("\n  ")}\n${describeRun(report)}`);
  return { decisions };
}

/** The run in short, for a failure message. */
function describeRun(report: RunReport): string {
  const lines = report.invocations.map((invocation, i) => {
    const outcome = report.outcomes[i]!;
    const ran = report.seen.executions.filter((e) => e.invocation === i).map((e) => `${e.name}#${e.attempt}`);
    const saves = invocation.saves.map((s) => `${s.name}:${s.status}${s.seq ? `@${s.seq}` : ""}`);
    return `  #${i}${invocation.recovering ? " (recovering)" : ""} ${outcome.type}${"wakeAt" in outcome ? `@${outcome.wakeAt}` : ""} ran [${ran.join(" ")}] saved [${saves.join(" ")}]`;
  });
  return lines.join("\n");
}

/** What a run stored, as a multiset that does not depend on which call got which repeated name. */
function storedShape(run: TestRun): string[] {
  // Event ids derive from step names, which repeated ids take in call order: count them only.
  const output = (s: StepRecord) => (s.kind === "sendEvent" && s.status === "completed" ? (s.output as { ids: string[] }).ids.length : s.output);
  // Names up to their ":n": which call takes "a:1" and which "a:2" follows call order, and a given
  // id "a:1" makes a repeated "a" take "a:2" or "a:1" take "a:1:1" depending on which came first.
  const base = (name: string) => name.replace(/(:\d+)+$/, "");
  const steps = [...run.steps.values()].map((s) => `${base(s.name)}|${s.kind}|${s.status}|${JSON.stringify(output(s) ?? null)}|${s.error?.name ?? ""}`);
  const events = run.sentEvents.map((event) => `event|${event.name}|${JSON.stringify(event.data)}`);
  return [...steps, ...events].sort();
}

// ---------------------------------------------------------------- generators

const stepId = fc.constantFrom("a", "b", "a:1");

const runNode: fc.Arbitrary<Node> = fc.record({
  t: fc.constant("run" as const),
  id: stepId,
  yields: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4 })),
  fail: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 2 }) }),
  mode: fc.oneof({ weight: 5, arbitrary: fc.constantFrom<FailMode>("error", "retryAfter") }, { weight: 1, arbitrary: fc.constant<FailMode>("nonRetriable") }),
  retryAfterMs: fc.constantFrom(1_000, 60_000, 7_200_000),
  caught: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});
const sleepNode: fc.Arbitrary<Node> = fc.record({ t: fc.constant("sleep" as const), id: stepId, ms: fc.constantFrom(0, 1_000, 60_000, 3_600_000) });
const sendNode: fc.Arbitrary<Node> = fc.record({ t: fc.constant("send" as const), id: stepId, count: fc.nat(2) });
const throwNode: fc.Arbitrary<Node> = fc.record({ t: fc.constant("throw" as const), k: fc.integer({ min: 1, max: 2 }) });
const delayNode: fc.Arbitrary<Node> = fc.record({ t: fc.constant("delay" as const), turns: fc.integer({ min: 1, max: 5 }) });

/** Programs `depth` levels deep; inside a race no code throws (a flaky throw decides a race by luck). */
function programs(depth: number, inRace: boolean, minLength = 0): fc.Arbitrary<Program> {
  const steps = [
    { weight: 5, arbitrary: runNode },
    { weight: 2, arbitrary: sleepNode },
    { weight: 1, arbitrary: sendNode },
    { weight: 1, arbitrary: delayNode },
  ];
  const leaf = inRace ? fc.oneof(...steps) : fc.oneof(...steps, { weight: 1, arbitrary: throwNode });
  if (depth === 0) return fc.array(leaf, { maxLength: 3 });
  const branches = (insideRace: boolean) => fc.array(programs(depth - 1, insideRace), { minLength: 2, maxLength: 3 });
  const node = fc.oneof(
    { weight: 6, arbitrary: leaf },
    { weight: 1, arbitrary: fc.record({ t: fc.constant("all" as const), branches: branches(inRace) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant("race" as const), any: fc.boolean(), branches: branches(true) }) },
  );
  return fc.array(node, { minLength, maxLength: 5 });
}

/** Whether a node holds code of `kind` outside steps. */
const holds = (node: Node, kind: "throw" | "delay"): boolean =>
  node.t === kind || ((node.t === "all" || node.t === "race") && node.branches.some((b) => b.some((n) => holds(n, kind))));

const isStep = (node: Node) => node.t === "run" || node.t === "sleep" || node.t === "send";

/**
 * Keeps a program deterministic the way a handler must be, where the generator alone would not:
 *
 * - A step after a possible throw or delay in its branch gets an id of its own. A throw skips the
 *   rest of its branch in one invocation and a delay moves its calls against other branches', so a
 *   repeated id there would take another ":n" in the next invocation, and another call's stored
 *   result: names go by call order (as Inngest's). That is the handler's nondeterminism.
 * - A race branch with a delay in it ends with a step: a branch that ends in a delay wins or loses
 *   by the time it takes, which a replay (stored results come at once) does not reproduce.
 */
function deterministic(program: Program): Program {
  let next = 0;
  const unique = () => `u${next++}`;
  const walk = (branch: Program, shifted: boolean, inRace: boolean): Program => {
    let after = shifted;
    const out = branch.map((node): Node => {
      let mapped: Node = node;
      if (node.t === "all") mapped = { ...node, branches: node.branches.map((b) => walk(b, after, false)) };
      else if (node.t === "race") mapped = { ...node, branches: node.branches.map((b) => walk(b, after, true)) };
      else if (after && isStep(node)) mapped = { ...node, id: unique() } as Node;
      if (holds(node, "throw") || holds(node, "delay")) after = true;
      return mapped;
    });
    const last = out.at(-1);
    if (inRace && out.some((node) => holds(node, "delay")) && !(last && isStep(last))) {
      out.push({ t: "run", id: unique(), yields: 0, fail: 0, mode: "error", retryAfterMs: 1_000, caught: true });
    }
    return out;
  };
  return walk(program, false, false);
}

const crashPoint: fc.Arbitrary<CrashPoint> = fc.oneof(
  fc.record({ atSave: fc.integer({ min: 1, max: 3 }), keep: fc.boolean() }),
  fc.record({ atYield: fc.integer({ min: 1, max: 20 }) }),
);

const plans: fc.Arbitrary<Plan> = fc.record({
  crashes: fc.array(fc.record({ gap: fc.nat(2), point: crashPoint }), { minLength: 1, maxLength: 3 }),
  extras: fc.array(fc.boolean(), { maxLength: 12 }),
  saveTurns: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }),
});

// ---------------------------------------------------------------- the test

const NUM_RUNS = Number(process.env.MODEL_RUNS ?? 2000);

describe("executeRun model", () => {
  it(
    "agrees with a pure evaluation, runs each body once per attempt it needs, and survives crashes and early replays",
    async () => {
      await fc.assert(
        fc.asyncProperty(programs(2, false, 1).map(deterministic), plans, async (program, plan) => {
          const clean = await runProgram(program, { crashes: [], extras: [], saveTurns: 0 });
          const cleanCheck = checkRun(program, clean, "uninterrupted");
          const crashed = await runProgram(program, plan);
          const crashedCheck = checkRun(program, crashed, "crashed");

          // With no race, or the same winners, the two runs end alike.
          const sameWinners = JSON.stringify([...cleanCheck.decisions].sort()) === JSON.stringify([...crashedCheck.decisions].sort());
          if (!hasRace(program) || sameWinners) {
            expect(crashed.outcome.type).toBe(clean.outcome.type);
            if (clean.outcome.type === "completed") expect(crashed.outcome).toEqual(clean.outcome);
          }
          // Without races every path runs to its end: both runs store the same steps and events.
          if (!hasRace(program) && clean.outcome.type === "completed") {
            expect(storedShape(crashed.run)).toEqual(storedShape(clean.run));
          }
        }),
        { numRuns: NUM_RUNS },
      );
    },
    120_000,
  );
});
