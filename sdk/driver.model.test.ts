import fc from "fast-check";
import { setImmediate } from "node:timers";
import { describe, expect, it } from "vitest";
import type { HandlerContext, RunOutcome, StepRecord } from "./driver.ts";
import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { RetryAfterError } from "./errors/RetryAfterError.ts";
import { StepError } from "./errors/StepError.ts";
import type { StoredEvent } from "./event.ts";
import { highestSeq, replayOrder } from "./replay.ts";
import { sendEventId, StepIdAllocator } from "./step.ts";
import { FakeClock, TestRun, type CrashPoint, type InvocationOutcome } from "./testing.ts";
import type { InvokeResult } from "./wait.ts";

/*
 * A model test of the driver. Handler programs from a small language (steps, sleeps, sends, waits
 * for events, invokes of child runs, flaky code and I/O outside steps, Promise.all / race / any)
 * run once with crashes, early replays, slow storage and an outside world that resolves waits (an
 * event arrives, a child run ends or fails) between invocations and while one is in progress (from
 * inside a step body, or after some turns of the event loop), or lets them time out; then once
 * without interruption, as the reference. Each run must agree with a pure evaluation of the program
 * given the winners its races took and the resolutions the run accepted, give every race the same
 * winner and every wait the same result in every invocation, give every step call its own result
 * and every node the same step name, run a body no more than the attempts it needs plus one per
 * crash that cut it, never run a cut body in the recovering invocation, store each sent event once,
 * accept a resolution exactly when the step still waits and its timeout has not passed (once, never
 * twice), and keep what it accepted: a wait returns its event iff it was accepted, null only once its
 * timeout passed. A finished run's stored state replayed a year later ends alike, by the same path.
 *
 * "The same resolutions" for the reference: a resolution lands in the handler's progress after
 * everything settled by the invocations that began before it (a replay settles it at the first
 * invocation that began after it, after the results stored by then; a recovering invocation goes
 * on from the dead one's start). The reference gets the resolutions the crashed run accepted (by
 * program node: names may differ between the runs), none of the refused ones, each where it landed
 * there: between invocations, once the steps that settled before it in the crashed run (in a replay
 * of its final state) have settled. That is exact only where the reference has an invocation end
 * there: an uninterrupted invocation may go past the point before it ends (the resolution lands
 * later), and the crashed run, whose time restarts moved on, may have got there at a time after
 * the wait's timeout in the reference (it is resolved sooner, so as not to be lost). Without races
 * a program's result depends on what its waits returned, not when: both runs end alike and store
 * the same steps. With races they end alike when their races went alike, as most do.
 * MODEL_RUNS=20000 runs more cases.
 */

// ---------------------------------------------------------------- the language

type FailMode = "error" | "retryAfter" | "nonRetriable";
type WaitMode = "one" | "any" | "all";

type Node =
  /** A step.run whose body takes `yields` macrotasks and fails its first `fail` attempts. */
  | { t: "run"; id: string; yields: number; fail: number; mode: FailMode; retryAfterMs: number; caught: boolean }
  | { t: "sleep"; id: string; ms: number }
  | { t: "send"; id: string; count: number }
  /** A step.waitForEvent for one event, the first of two (any) or both of two (all); `key` numbers it for its fate. */
  | { t: "wait"; id: string; key: number; mode: WaitMode; timeoutMs: number }
  /** A step.invoke of a child run; a StepError (the child failed, or timed out) is caught if `caught`. */
  | { t: "invoke"; id: string; key: number; timeoutMs: number; caught: boolean }
  /** Code outside steps that fails the first `k` times it runs (a flaky call). */
  | { t: "throw"; k: number }
  /** Code outside steps that awaits `turns` macrotasks (I/O outside a step). */
  | { t: "delay"; turns: number }
  | { t: "all"; branches: Program[] }
  | { t: "race"; any: boolean; branches: Program[] };

type Program = Node[];
type WaitNode = Extract<Node, { t: "wait" | "invoke" }>;

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
  /** Every step call: the name it got, at the node it was made from. */
  readonly calls: { invocation: number; name: string; node: string }[] = [];
  /** Wait and invoke calls, name to node, first called first: what the outside world may resolve. */
  readonly waits = new Map<string, string>();
  /** What each wait or invoke call returned, as text (see resultText). */
  readonly waitResults: { invocation: number; name: string; node: string; result: string }[] = [];
  /** A step body begins: a moment the outside world may act in, while the invocation runs. */
  onBody: () => void = () => {};
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

  /** The name the driver gives this call (the same allocator, in the same call order). */
  private name(id: string, path: string): string {
    const name = this.ids.next(id);
    this.seen.calls.push({ invocation: this.invocation, name, node: path });
    return name;
  }

  private async node(node: Node, path: string, acc: string): Promise<string> {
    const { step } = this.ctx;
    switch (node.t) {
      case "run": {
        const name = this.name(node.id, path);
        const body = () => {
          const attempt = this.ctx.attempt;
          this.seen.executions.push({ invocation: this.invocation, name, node: path, attempt });
          // The world may resolve a wait now, while this invocation runs (not from a dead one).
          if (this.seen.invocation === this.invocation && !this.seen.dead.has(this.invocation)) this.seen.onBody();
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
        this.name(node.id, path);
        await step.sleep(node.id, node.ms);
        return mix(acc, "slept");
      case "send": {
        const name = this.name(node.id, path);
        const events = Array.from({ length: node.count }, (_, i) => ({ name: `model/${node.id}`, data: { acc, i } }));
        const { ids } = await step.sendEvent(node.id, events);
        const expected = events.map((_, i) => sendEventId(RUN_ID, name, i));
        if (JSON.stringify(ids) !== JSON.stringify(expected)) this.seen.violations.push(`step ${name}: ids ${ids.join()} are not the deterministic ${expected.join()}`);
        return mix(acc, `sent${ids.length}`);
      }
      case "wait": {
        const name = this.name(node.id, path);
        if (!this.seen.waits.has(name)) this.seen.waits.set(name, path);
        const options = node.mode === "one" ? { event: "model/reply", timeout: node.timeoutMs } : { events: ["model/a", "model/b"], mode: node.mode, timeout: node.timeoutMs };
        const result = await (step.waitForEvent as (id: string, options: unknown) => Promise<unknown>)(node.id, options);
        const text = JSON.stringify(result);
        this.seen.waitResults.push({ invocation: this.invocation, name, node: path, result: text });
        return mix(acc, `w:${text}`);
      }
      case "invoke": {
        const name = this.name(node.id, path);
        if (!this.seen.waits.has(name)) this.seen.waits.set(name, path);
        let text: string;
        let failure: StepError | undefined;
        try {
          text = `ok:${JSON.stringify(await step.invoke(node.id, { function: "model/child", data: { acc }, timeout: node.timeoutMs }))}`;
        } catch (err) {
          if (!(err instanceof StepError)) throw err;
          text = `err:${err.error.name}`;
          failure = err;
        }
        this.seen.waitResults.push({ invocation: this.invocation, name, node: path, result: text });
        if (!failure) return mix(acc, `w:${text}`);
        if (!node.caught) throw failure;
        return mix(acc, `caught:${text}`);
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

/**
 * What the program computes given the winners its races took (from `decisions`) and the
 * resolutions the run accepted (by node).
 */
function evaluate(program: Program, path: string, input: string, decisions: Map<string, string>, resolutions: ReadonlyMap<string, Resolution>): Pure {
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
      case "wait":
        acc = mix(acc, `w:${resultText(node, resolutions.get(here))}`);
        break;
      case "invoke": {
        const text = resultText(node, resolutions.get(here));
        if (!text.startsWith("err:")) acc = mix(acc, `w:${text}`);
        else if (!node.caught) return { ok: false };
        else acc = mix(acc, `caught:${text}`);
        break;
      }
      case "throw":
      case "delay":
        break;
      case "all": {
        const results = node.branches.map((branch, j) => evaluate(branch, `${here}.${j}`, mix(acc, `b${j}`), decisions, resolutions));
        if (results.some((r) => !r.ok)) return { ok: false };
        acc = mix(acc, results.map((r) => (r as { value: string }).value).join("|"));
        break;
      }
      case "race": {
        const decision = decisions.get(here);
        if (decision === undefined) throw new Error(`race ${here} was never decided`);
        if (decision === "none") {
          if (node.branches.some((branch, j) => evaluate(branch, `${here}.${j}`, mix(acc, `b${j}`), decisions, resolutions).ok)) throw new Error(`race ${here}: Promise.any failed though a branch succeeds`);
          return { ok: false };
        }
        const [kind, index] = decision.split(" ") as [string, string];
        const j = Number(index);
        const result = evaluate(node.branches[j]!, `${here}.${j}`, mix(acc, `b${j}`), decisions, resolutions);
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

// ---------------------------------------------------------------- the world outside the run

/** Where the outside world acts: between invocations (before time moves, after), or in one. */
type MomentKind = "before" | "after" | "body" | "tick";

/** What the outside world does to a wait or invoke step: resolve it, fail it (a child's error), or let it time out. */
interface Fate {
  /** For a wait, "error" resolves it too. */
  outcome: "resolve" | "error" | "timeout";
  /** The kind of moment it acts in, and how many of those pass first while the step waits. */
  when: MomentKind;
  lag: number;
  /** An `all` wait gets one of its two events only (so it times out); `reverse` sends the second first. */
  partial: boolean;
  reverse: boolean;
  /** Sends the event (or the child's end) once more after the step was resolved: it must be refused. */
  duplicate: boolean;
  n: number;
}

/** What the outside world did to one wait or invoke step, as far as the run accepted it. */
interface Resolution {
  name: string;
  node: string;
  /** Accepted events by condition (a wait). */
  events: (StoredEvent | null)[];
  /** How the child ended (an invoke). */
  result?: InvokeResult;
  /** The step no longer waits. */
  complete: boolean;
  /** The step as the last accepted part stored it: what storage must still hold at the end. */
  record: StepRecord;
}

const EVENT_TS = Date.UTC(2025, 0, 1);

function eventFor(node: Extract<Node, { t: "wait" }>, index: number, n: number, copy = 0): StoredEvent {
  const name = node.mode === "one" ? "model/reply" : index === 0 ? "model/a" : "model/b";
  return { id: `reply-${node.key}-${index}-${copy}`, name, data: { key: node.key, index, n, copy }, ts: EVENT_TS };
}

function childEnd(node: Extract<Node, { t: "invoke" }>, fate: Fate): InvokeResult {
  return fate.outcome === "error" ? { error: { name: "ChildError", message: `child ${node.key} failed` } } : { output: { key: node.key, n: fate.n } };
}

/**
 * What a wait or invoke call returns given what the run accepted for it, as the handler writes it
 * down: the event (or the events of an `all` wait) as JSON, or "null" at the timeout; "ok:" and the
 * child's output, or "err:" and the StepError's error name (the child's, or InngestInvokeTimeoutError).
 */
function resultText(node: WaitNode, resolution: Resolution | undefined): string {
  if (node.t === "wait") {
    if (!resolution?.complete) return "null";
    return JSON.stringify(node.mode === "all" ? resolution.events : resolution.events.find((event) => event !== null));
  }
  if (!resolution?.complete) return "err:InngestInvokeTimeoutError";
  const result = resolution.result!;
  return "error" in result ? `err:${result.error.name}` : `ok:${JSON.stringify(result.output)}`;
}

/** A resolution another run accepted, and the nodes whose steps settled before it there: where it landed. */
interface Landed {
  resolution: Resolution;
  after: ReadonlySet<string>;
}

/**
 * The world outside a run: at each moment it looks at the wait and invoke steps stored as waiting
 * and resolves those whose fate says so now, or (for a reference run) repeats what another run
 * accepted, where it landed there (see `repeat`). It checks every answer: a resolution is accepted
 * exactly when the step still waits for it and its timeout has not passed.
 */
class World {
  /** Accepted resolutions by step name. */
  readonly accepted = new Map<string, Resolution>();
  readonly log: { invocation: number; text: string }[] = [];
  /** Counts accepted resolutions: the run wakes at once after one, as a RunObject wakes it. */
  acceptances = 0;
  private readonly lags = new Map<string, number>();
  private readonly finished = new Set<string>();

  constructor(
    private readonly program: Program,
    private readonly run: TestRun,
    private readonly seen: Observations,
    /** Fates by a wait's key (cycled), or the resolutions another run accepted, by node, to repeat. */
    private readonly script: { fates: Fate[] } | { repeat: ReadonlyMap<string, Landed> },
  ) {}

  /** `due`: between invocations, the time the run sleeps until if nothing wakes it. */
  moment(kind: MomentKind, due?: number): void {
    let settled: Set<string> | undefined;
    for (const [name, path] of this.seen.waits) {
      if (this.finished.has(name)) continue;
      const record = this.run.step(name);
      // Not stored yet (its save is slow, or was lost in a crash).
      if (!record) continue;
      const node = nodeAt(this.program, path) as WaitNode;
      if ("repeat" in this.script) {
        if (kind !== "before") continue;
        const target = this.script.repeat.get(path);
        // A resolution lands after everything settled by the invocations begun before it: it
        // lands where it did in the other run once the same steps have settled here (or has gone
        // past that point already: an uninterrupted invocation may get further), or before it
        // would time out (after the next invocation begins, at `due`, a resolution is at due + 1).
        settled ??= settledNodes(this.run, this.seen);
        const ready = !target || [...target.after].every((node) => settled!.has(node));
        if (ready || due === undefined || record.wakeAt! <= due + 1) this.repeat(name, path, node, target?.resolution);
        continue;
      }
      const fate = this.script.fates[node.key % this.script.fates.length]!;
      if (record.status !== "waiting") {
        // Only the world resolves a wait: this one is complete.
        if (!fate.duplicate) this.finished.add(name);
        else if (kind === fate.when) {
          this.finished.add(name);
          this.duplicate(name, node, fate);
        }
        continue;
      }
      if (fate.outcome === "timeout") {
        this.finished.add(name);
        continue;
      }
      if (kind !== fate.when) continue;
      const lag = this.lags.get(name) ?? fate.lag;
      this.lags.set(name, lag - 1);
      if (lag > 0) continue;
      if (!this.resolvePart(name, path, node, fate, kind)) this.finished.add(name);
    }
  }

  /** Resolves the step, or the next condition of an `all` wait; false when there is nothing (more) to do. */
  private resolvePart(name: string, path: string, node: WaitNode, fate: Fate, kind: MomentKind): boolean {
    if (node.t === "invoke") {
      const result = childEnd(node, fate);
      return this.offer(name, path, node, kind, `child ${"error" in result ? "failed" : "ended"}`, () => this.run.resolveInvoke(name, result), (r) => (r.result = result));
    }
    const first = fate.reverse ? 1 : 0;
    const order = node.mode === "one" ? [0] : node.mode === "any" || fate.partial ? [first] : [first, 1 - first];
    const index = order[this.accepted.get(name)?.events.filter((event) => event !== null).length ?? 0];
    if (index === undefined) return false;
    const event = eventFor(node, index, fate.n);
    return this.offer(name, path, node, kind, `event ${index}`, () => this.run.resolveWait(name, event, index), (r) => (r.events[index] = event));
  }

  /** A reference run gets what another run accepted for this node, all of it at once. */
  private repeat(name: string, path: string, node: WaitNode, target: Resolution | undefined): void {
    this.finished.add(name);
    if (!target) return;
    if (node.t === "invoke") {
      const result = target.result!;
      this.offer(name, path, node, "before", "child end", () => this.run.resolveInvoke(name, result), (r) => (r.result = result));
      return;
    }
    for (const [index, event] of target.events.entries()) {
      if (event) this.offer(name, path, node, "before", `event ${index}`, () => this.run.resolveWait(name, event, index), (r) => (r.events[index] = event));
    }
  }

  /** Offers a resolution; checks the answer against the step's state, and keeps what was accepted. */
  private offer(name: string, path: string, node: WaitNode, kind: MomentKind, what: string, send: () => boolean, apply: (resolution: Resolution) => void): boolean {
    const before = this.run.step(name)!;
    const open = before.status === "waiting" && this.resolutionTime() < before.wakeAt!;
    const answer = send();
    this.log.push({ invocation: this.seen.invocation, text: `${kind}: ${what} for ${name} ${answer ? "accepted" : "refused"}` });
    if (answer !== open) this.seen.violations.push(`${what} for ${name} was ${answer ? "accepted" : "refused"}, though the step ${open ? "waited for it" : "no longer waited"}`);
    if (!answer) return false;
    const record = this.run.step(name)!;
    const resolution = this.accepted.get(name) ?? { name, node: path, events: node.t === "wait" ? (node.mode === "one" ? [null] : [null, null]) : [], complete: false, record };
    apply(resolution);
    resolution.record = record;
    resolution.complete = record.status !== "waiting";
    // An `all` wait is resolved by its last event; anything else by its first.
    const completes = node.t === "invoke" || node.mode !== "all" || resolution.events.every((event) => event !== null);
    if (resolution.complete !== completes) this.seen.violations.push(`${what} for ${name} left the step ${record.status}`);
    this.accepted.set(name, resolution);
    this.acceptances++;
    return true;
  }

  /** The same event or child end again, after the step was resolved: a step is resolved once. */
  private duplicate(name: string, node: WaitNode, fate: Fate): void {
    const answer = node.t === "invoke" ? this.run.resolveInvoke(name, childEnd(node, fate)) : this.run.resolveWait(name, eventFor(node, 0, fate.n, 1), 0);
    this.log.push({ invocation: this.seen.invocation, text: `duplicate for ${name} ${answer ? "accepted" : "refused"}` });
    if (answer) this.seen.violations.push(`a second resolution of ${name} was accepted: applied twice`);
  }

  private resolutionTime(): number {
    return Math.max(this.run.clock.now(), (this.run.starts.at(-1)?.at ?? 0) + 1);
  }
}

/** What a run accepted, by node. */
function acceptedByNode(world: World): Map<string, Resolution> {
  return new Map([...world.accepted.values()].map((resolution) => [resolution.node, resolution]));
}

/** A call's node by its name, in a run. */
function nodesByName(seen: Observations): Map<string, string> {
  const nodes = new Map<string, string>();
  for (const { name, node } of seen.calls) if (!nodes.has(name)) nodes.set(name, node);
  return nodes;
}

/** The nodes whose steps a replay of the run's stored state now settles (results, sleeps and resolutions woken so far). */
function settledNodes(run: TestRun, seen: Observations): Set<string> {
  const nodes = nodesByName(seen);
  return new Set(replayOrder(run.steps.values(), run.starts).map((id) => nodes.get(run.steps.get(id)!.name)!));
}

/**
 * Where each resolution a finished run accepted landed in the handler's progress: after the nodes
 * whose steps settle before it in a replay of the final state (all of them, for one no
 * invocation began after, or an `all` wait that got part of its events).
 */
function landings(report: RunReport): Map<string, Landed> {
  const { run, seen, world } = report;
  const nodes = nodesByName(seen);
  const order = replayOrder(run.steps.values(), run.starts);
  const landed = new Map<string, Landed>();
  for (const resolution of world.accepted.values()) {
    const at = order.indexOf(resolution.record.id);
    const before = at < 0 ? order : order.slice(0, at);
    landed.set(resolution.node, { resolution, after: new Set(before.map((id) => nodes.get(run.steps.get(id)!.name)!)) });
  }
  return landed;
}

// ---------------------------------------------------------------- driving a run, with crashes

interface Plan {
  /** Crashes, each `gap` clean invocations after the previous one. */
  crashes: { gap: number; point: CrashPoint }[];
  /** After a suspension at invocation i, replay early (nothing due) if extras[i]. */
  extras: boolean[];
  /** Slow storage: a save takes up to this many turns (by a digest of the record). */
  saveTurns: number;
  /** What the outside world does to each wait and invoke step (by its key, cycled). */
  fates: Fate[];
  /** While an invocation runs, the world acts every `tickTurns` turns of the event loop (0: never). */
  tickTurns: number;
}

const UNINTERRUPTED: Plan = { crashes: [], extras: [], saveTurns: 0, fates: [], tickTurns: 0 };

interface RunReport {
  run: TestRun;
  seen: Observations;
  world: World;
  outcome: RunOutcome;
  outcomes: InvocationOutcome[];
  /** Per invocation: whether it crashed, the saves it made, and the time it began. */
  invocations: { crashed: boolean; recovering: boolean; saves: StepRecord[]; startedAt: number }[];
}

/** Runs a program to its end under `plan`; with `repeat`, the world repeats those resolutions instead of the plan's fates. */
async function runProgram(program: Program, plan: Plan, repeat?: ReadonlyMap<string, Landed>): Promise<RunReport> {
  // Code that awaits macrotasks may get further in an early replay than in the invocation before
  // (which suspended while it waited): that replay is not a no-op, and need not be.
  const hasDelay = program.some((node) => holds(node, "delay"));
  const seen = new Observations();
  const saveTurns = (record: StepRecord) => parseInt(mix(record.name, record.status), 16) % (plan.saveTurns + 1);
  const run = new TestRun(handlerFor(program, seen), { runId: RUN_ID, retries: RETRIES, stepTimeoutMs: 15 * 60_000, clock: new FakeClock(), saveTurns });
  const world = new World(program, run, seen, repeat ? { repeat } : { fates: plan.fates });
  seen.onBody = () => world.moment("body");
  const invocations: RunReport["invocations"] = [];
  const crashAt = new Map<number, CrashPoint>();
  let at = -1;
  for (const crash of plan.crashes) crashAt.set((at += crash.gap + 1), crash.point);
  let recovering = false;

  const invoke = async (crash?: CrashPoint, early = false) => {
    seen.invocation = invocations.length;
    const before = run.saved.length;
    const startedAt = run.clock.now();
    // The world acts every few turns while the invocation runs (not in an early replay: nothing may happen there).
    let running = true;
    if (plan.tickTurns > 0 && !early) {
      void (async () => {
        for (;;) {
          for (let t = 0; t < plan.tickTurns; t++) await new Promise((resolve) => setImmediate(resolve));
          if (!running) return;
          world.moment("tick");
        }
      })();
    }
    const outcome = await run.invoke(crash);
    running = false;
    invocations.push({ crashed: outcome.type === "crashed", recovering, saves: run.saved.slice(before), startedAt });
    if (outcome.type === "crashed") seen.dead.add(seen.invocation);
    recovering = outcome.type === "crashed";
    return outcome;
  };

  for (let i = 0; i < 120; i++) {
    const acceptances = world.acceptances;
    const outcome = await invoke(crashAt.get(i));
    if (outcome.type === "crashed") {
      world.moment("before");
      run.clock.advance(10_000);
      world.moment("after");
      continue;
    }
    const index = invocations.length - 1;
    if (outcome.type === "retry" && !/^flaky /.test(outcome.error.message)) seen.violations.push(`invocation ${index} failed outside steps: ${outcome.error.name}: ${outcome.error.message}`);
    // A RunObject takes no resolution once its run has ended.
    if (outcome.type !== "suspended" && outcome.type !== "retry") return { run, seen, world, outcome, outcomes: run.outcomes, invocations };
    world.moment("before", outcome.wakeAt);
    const woken = world.acceptances !== acceptances;
    if (outcome.type === "suspended" && plan.extras[i] && !hasDelay && !woken && outcome.wakeAt > run.clock.now()) {
      // An invocation with nothing due replays to the same suspension and does nothing else.
      const executions = seen.executions.length;
      const extra = await invoke(undefined, true);
      if (JSON.stringify(extra) !== JSON.stringify(outcome)) seen.violations.push(`early replay after invocation ${index} answered ${JSON.stringify(extra)}, not ${JSON.stringify(outcome)}`);
      if (invocations.at(-1)!.saves.length > 0) seen.violations.push(`early replay after invocation ${index} saved ${invocations.at(-1)!.saves.map((s) => s.name).join()}`);
      if (seen.executions.length > executions) seen.violations.push(`early replay after invocation ${index} ran bodies`);
    }
    // A resolution wakes the run at once (as a RunObject's alarm, set to the resolution's time);
    // otherwise time moves to the next wake.
    if (!woken) run.clock.advanceTo(outcome.wakeAt);
    world.moment("after");
  }
  throw new Error("the run did not end within 120 invocations");
}

// ---------------------------------------------------------------- the properties

function checkRun(program: Program, report: RunReport, label: string): { decisions: Map<string, string> } {
  const { seen, run, invocations, world } = report;
  const problems = [...seen.violations];
  const resolutions = acceptedByNode(world);

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
    expected = evaluate(program, "", "seed", decisions, resolutions);
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

  // Every invocation gives a node's call the same name, and a name to the same node's call.
  problems.push(...namesAgree(seen.calls, new Map(), new Map()));

  // A wait returns the same in every invocation: what the world's accepted resolutions give (the
  // event iff it was accepted), null (or InngestInvokeTimeoutError) only once its timeout passed.
  const resultOf = new Map<string, string>();
  for (const { invocation, name, node, result } of seen.waitResults) {
    const first = resultOf.get(name);
    if (first !== undefined && first !== result) problems.push(`${name} returned ${first}, then ${result} in invocation ${invocation}`);
    resultOf.set(name, result);
    const accepted = world.accepted.get(name);
    const expectedResult = resultText(nodeAt(program, node) as WaitNode, accepted);
    if (result !== expectedResult) problems.push(`${name} returned ${result} in invocation ${invocation}; its accepted resolutions give ${expectedResult}`);
    const timeoutAt = run.step(name)?.request?.timeoutAt;
    if (!accepted?.complete && (timeoutAt === undefined || timeoutAt > invocations[invocation]!.startedAt)) {
      problems.push(`${name} timed out in invocation ${invocation}, which began at ${invocations[invocation]!.startedAt}, before its timeout ${timeoutAt}`);
    }
  }
  // No resolution is lost: storage still holds what each one stored. The driver stores a wait
  // once, as waiting (a second save would start a second child), and never completes one itself.
  for (const resolution of world.accepted.values()) {
    if (JSON.stringify(run.step(resolution.name)) !== JSON.stringify(resolution.record)) {
      problems.push(`${resolution.name}: storage holds ${JSON.stringify(run.step(resolution.name))}, not what its resolution stored`);
    }
  }
  const waitSaves = new Map<string, number>();
  for (const record of run.saved) {
    if (record.kind !== "waitForEvent" && record.kind !== "invoke") continue;
    waitSaves.set(record.name, (waitSaves.get(record.name) ?? 0) + 1);
    if (record.status !== "waiting") problems.push(`the driver stored ${record.name} as ${record.status}`);
  }
  for (const [name, count] of waitSaves) if (count > 1) problems.push(`the driver stored ${name} ${count} times`);
  for (const record of run.steps.values()) {
    if ((record.kind === "waitForEvent" || record.kind === "invoke") && record.status !== "waiting" && !world.accepted.get(record.name)?.complete) {
      problems.push(`${record.name} is stored ${record.status} with no resolution`);
    }
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
    const world = report.world.log.filter((entry) => entry.invocation === i).map((entry) => entry.text);
    return `  #${i}${invocation.recovering ? " (recovering)" : ""} @${invocation.startedAt} ${outcome.type}${"wakeAt" in outcome ? `@${outcome.wakeAt}` : ""} ran [${ran.join(" ")}] saved [${saves.join(" ")}]${world.length ? ` world [${world.join("; ")}]` : ""}`;
  });
  return lines.join("\n");
}

/** Step calls name to node and node to name, one each, over `calls` and what `names` / `nodes` already hold. */
function namesAgree(calls: Observations["calls"], names: Map<string, string>, nodes: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const { invocation, name, node } of calls) {
    const nodeOfName = nodes.get(name) ?? node;
    const nameOfNode = names.get(node) ?? name;
    if (nodeOfName !== node) problems.push(`invocation ${invocation}: ${name} is the call of ${node}, and of ${nodeOfName} before`);
    if (nameOfNode !== name) problems.push(`invocation ${invocation}: the call of ${node} is ${name}, and was ${nameOfNode} before`);
    nodes.set(name, nodeOfName);
    names.set(node, nameOfNode);
  }
  return problems;
}

/**
 * Replays a finished run's stored state in a new invocation a year later: the same outcome, by
 * the same path (races, waits and names as before). Without races a completed run's every path ran
 * to its end, so (without I/O outside steps, which may come back sooner than it did) the replay
 * runs no body and stores nothing. (A failed run's branches left behind may go on: a retry is due.)
 * I/O outside steps may also have the invocation suspend while handler code still awaits it, as
 * any invocation may: then the replay goes on in further invocations.
 */
async function checkReplayOfFinished(program: Program, report: RunReport, label: string): Promise<void> {
  const { run, seen } = report;
  const replaySeen = new Observations();
  for (const [path, calls] of seen.throwCalls) replaySeen.throwCalls.set(path, calls);
  const clock = new FakeClock(run.clock.now() + 366 * 24 * 3_600_000);
  const replay = new TestRun(handlerFor(program, replaySeen), { runId: RUN_ID, retries: RETRIES, stepTimeoutMs: 15 * 60_000, clock });
  for (const [id, record] of run.steps) replay.steps.set(id, record);
  replay.starts.splice(0, replay.starts.length, ...run.starts, { at: clock.now(), seq: highestSeq(run.steps.values()) });
  replay.handlerFailures = run.handlerFailures;
  const hasDelay = program.some((node) => holds(node, "delay"));
  let outcome = await replay.invoke();
  const problems: string[] = [];
  for (let i = 0; i < 20 && (outcome.type === "suspended" || outcome.type === "retry"); i++) {
    if (!hasDelay) problems.push(`the replay ended ${outcome.type}`);
    replay.clock.advanceTo(outcome.wakeAt);
    replaySeen.invocation++;
    outcome = await replay.invoke();
  }
  problems.push(...replaySeen.violations);
  // (An error's stack says where it was thrown: a stored failure is rethrown from elsewhere.)
  const withoutStack = (o: InvocationOutcome) => JSON.stringify(o, (key, value: unknown) => (key === "stack" ? undefined : value));
  if (withoutStack(outcome) !== withoutStack(report.outcome)) problems.push(`the replay ended ${withoutStack(outcome)}, not ${withoutStack(report.outcome)}`);
  const decided = new Map<string, string>();
  for (const { node, decision } of seen.decisions) if (!decided.has(node)) decided.set(node, decision);
  for (const { node, decision } of replaySeen.decisions) {
    if (decided.has(node) && decided.get(node) !== decision) problems.push(`race ${node}: ${decided.get(node)} in the run, ${decision} in the replay`);
  }
  const results = new Map(seen.waitResults.map((entry) => [entry.name, entry.result]));
  for (const { name, result } of replaySeen.waitResults) {
    if (results.has(name) && results.get(name) !== result) problems.push(`${name} returned ${results.get(name)} in the run, ${result} in the replay`);
  }
  const names = new Map<string, string>();
  const nodes = new Map<string, string>();
  namesAgree(seen.calls, names, nodes);
  problems.push(...namesAgree(replaySeen.calls, names, nodes).map((problem) => `replay: ${problem}`));
  if (!hasRace(program) && !hasDelay && report.outcome.type === "completed") {
    if (replaySeen.executions.length > 0) problems.push(`the replay ran ${replaySeen.executions.map((e) => e.name).join()}`);
    if (replay.saved.length > 0) problems.push(`the replay stored ${replay.saved.map((s) => s.name).join()}`);
  }
  if (problems.length > 0) throw new Error(`${label} run, replayed when finished:\n  ${problems.join("\n  ")}\n${describeRun(report)}`);
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
const timeoutMs = fc.constantFrom(1_000, 60_000, 3_600_000, 0);
// Keys are given by `deterministic`.
const waitNode: fc.Arbitrary<Node> = fc.record({ t: fc.constant("wait" as const), id: stepId, key: fc.constant(0), mode: fc.constantFrom<WaitMode>("one", "any", "all"), timeoutMs });
const invokeNode: fc.Arbitrary<Node> = fc.record({
  t: fc.constant("invoke" as const),
  id: stepId,
  key: fc.constant(0),
  timeoutMs,
  caught: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});

/** How often each kind of node comes. */
interface Mix {
  run: number;
  sleep: number;
  send: number;
  delay: number;
  wait: number;
  invoke: number;
  throw: number;
}

const EVERYTHING: Mix = { run: 5, sleep: 2, send: 1, delay: 1, wait: 2, invoke: 1, throw: 1 };
/** Mostly waits, racing each other, sleeps and steps. */
const WAITS: Mix = { run: 3, sleep: 2, send: 0, delay: 1, wait: 4, invoke: 2, throw: 1 };

/** Programs `depth` levels deep; inside a race no code throws (a flaky throw decides a race by luck). */
function programs(depth: number, inRace: boolean, minLength = 0, mix: Mix = EVERYTHING): fc.Arbitrary<Program> {
  const kinds: [number, fc.Arbitrary<Node>][] = [
    [mix.run, runNode],
    [mix.sleep, sleepNode],
    [mix.send, sendNode],
    [mix.delay, delayNode],
    [mix.wait, waitNode],
    [mix.invoke, invokeNode],
    [inRace ? 0 : mix.throw, throwNode],
  ];
  const leaf = fc.oneof(...kinds.filter(([weight]) => weight > 0).map(([weight, arbitrary]) => ({ weight, arbitrary })));
  if (depth === 0) return fc.array(leaf, { maxLength: 3 });
  const branches = (insideRace: boolean) => fc.array(programs(depth - 1, insideRace, 0, mix), { minLength: 2, maxLength: 3 });
  const node = fc.oneof(
    { weight: 6, arbitrary: leaf },
    { weight: 1, arbitrary: fc.record({ t: fc.constant("all" as const), branches: branches(inRace) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant("race" as const), any: fc.boolean(), branches: branches(true) }) },
  );
  return fc.array(node, { minLength, maxLength: 5 });
}

/** Whether a node is, or holds, a node of `kind` (a throw or delay: code outside steps; a wait or invoke). */
const holds = (node: Node, kind: "throw" | "delay" | "wait" | "invoke"): boolean =>
  node.t === kind || ((node.t === "all" || node.t === "race") && node.branches.some((b) => b.some((n) => holds(n, kind))));

const isStep = (node: Node) => node.t === "run" || node.t === "sleep" || node.t === "send" || node.t === "wait" || node.t === "invoke";

/**
 * Keeps a program deterministic the way a handler must be, where the generator alone would not:
 *
 * - A step after a possible throw or delay in its branch gets an id of its own. A throw skips the
 *   rest of its branch in one invocation and a delay moves its calls against other branches', so a
 *   repeated id there would take another ":n" in the next invocation, and another call's stored
 *   result: names go by call order (as Inngest's). That is the handler's nondeterminism.
 * - A race branch with a delay in it ends with a step: a branch that ends in a delay wins or loses
 *   by the time it takes, which a replay (stored results come at once) does not reproduce.
 *
 * It also numbers the waits and invokes (`key`), which picks each one's fate in the plan.
 */
function deterministic(program: Program): Program {
  let next = 0;
  let keys = 0;
  const unique = () => `u${next++}`;
  const walk = (branch: Program, shifted: boolean, inRace: boolean): Program => {
    let after = shifted;
    const out = branch.map((node): Node => {
      let mapped: Node = node;
      if (node.t === "all") mapped = { ...node, branches: node.branches.map((b) => walk(b, after, false)) };
      else if (node.t === "race") mapped = { ...node, branches: node.branches.map((b) => walk(b, after, true)) };
      else if (after && isStep(node)) mapped = { ...node, id: unique() } as Node;
      if (mapped.t === "wait" || mapped.t === "invoke") mapped = { ...mapped, key: keys++ };
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

const fate: fc.Arbitrary<Fate> = fc.record({
  outcome: fc.oneof(
    { weight: 5, arbitrary: fc.constant("resolve" as const) },
    { weight: 2, arbitrary: fc.constant("error" as const) },
    { weight: 2, arbitrary: fc.constant("timeout" as const) },
  ),
  when: fc.constantFrom<MomentKind>("before", "after", "body", "tick"),
  lag: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }) }),
  partial: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  reverse: fc.boolean(),
  duplicate: fc.boolean(),
  n: fc.nat(99),
});

const plans = (minCrashes: number): fc.Arbitrary<Plan> =>
  fc.record({
    crashes: fc.array(fc.record({ gap: fc.nat(2), point: crashPoint }), { minLength: minCrashes, maxLength: 3 }),
    extras: fc.array(fc.boolean(), { maxLength: 12 }),
    saveTurns: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }),
    fates: fc.array(fate, { minLength: 1, maxLength: 5 }),
    tickTurns: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 6 })),
  });

// ---------------------------------------------------------------- the test

const NUM_RUNS = Number(process.env.MODEL_RUNS ?? 1000);

/** Runs the program under the plan, then uninterrupted with the resolutions that run accepted; checks both, and that they agree. */
async function property(program: Program, plan: Plan): Promise<void> {
  const crashed = await runProgram(program, plan);
  const crashedCheck = checkRun(program, crashed, "crashed");
  await checkReplayOfFinished(program, crashed, "crashed");
  const clean = await runProgram(program, UNINTERRUPTED, landings(crashed));
  const cleanCheck = checkRun(program, clean, "uninterrupted");
  await checkReplayOfFinished(program, clean, "uninterrupted");
  const both = () => `crashed run:\n${describeRun(crashed)}\nuninterrupted run:\n${describeRun(clean)}`;

  // With no race, or the same winners, the two runs end alike.
  const sameWinners = JSON.stringify([...cleanCheck.decisions].sort()) === JSON.stringify([...crashedCheck.decisions].sort());
  if (!hasRace(program) || sameWinners) {
    expect(crashed.outcome.type, both()).toBe(clean.outcome.type);
    if (clean.outcome.type === "completed") expect(crashed.outcome, both()).toEqual(clean.outcome);
  }
  // Without races every path runs to its end: both runs accept the same resolutions, and store
  // the same steps and events.
  if (!hasRace(program) && clean.outcome.type === "completed") {
    const byNode = (world: World) => [...world.accepted.values()].map((r) => JSON.stringify([r.node, r.events, r.result ?? null, r.complete])).sort();
    expect(byNode(clean.world), both()).toEqual(byNode(crashed.world));
    expect(storedShape(crashed.run), both()).toEqual(storedShape(clean.run));
  }
}

describe("executeRun model", () => {
  it(
    "agrees with a pure evaluation, runs each body once per attempt it needs, and survives crashes, early replays and resolutions from outside",
    async () => {
      await fc.assert(fc.asyncProperty(programs(2, false, 1).map(deterministic), plans(1), property), { numRuns: NUM_RUNS });
    },
    120_000,
  );

  it(
    "settles waits and invokes resolved between and during invocations, or timed out, as the world decided, on every replay",
    async () => {
      const waitPrograms = programs(2, false, 1, WAITS)
        .map(deterministic)
        .filter((program) => program.some((node) => holds(node, "wait") || holds(node, "invoke")));
      await fc.assert(fc.asyncProperty(waitPrograms, plans(0), property), { numRuns: NUM_RUNS });
    },
    120_000,
  );
});
