import { AsyncLocalStorage } from "node:async_hooks";
import type { ContextScope } from "./scope.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/** How an experiment picks its variant (Inngest's `ExperimentStrategyConfig`). */
export interface ExperimentStrategyConfig {
  strategy: string;
  weights?: Record<string, number>;
  nullishBucket?: boolean;
}

/** A variant picker: called once per run, inside the experiment's memoized step, with the variants' names. */
export interface ExperimentSelectFn {
  (variantNames?: string[]): Promise<string> | string;
  __experimentConfig: ExperimentStrategyConfig;
}

/** The run whose experiment is choosing now: what `experiment.weighted` seeds its choice with. */
export const selectScope: ContextScope<{ runId: string }> = new AsyncLocalStorage<{ runId: string }>();

/**
 * Inngest v4's variant pickers for `group.experiment`. Their choices are deterministic (seeded by
 * the run id or the bucketed value, with Inngest's hash), and memoized in the run either way.
 *
 * @example
 * await group.experiment("checkout", { variants: { a: () => step.run("a", a), b: () => step.run("b", b) }, select: experiment.weighted({ a: 80, b: 20 }) });
 */
export const experiment = {
  /** Always picks `variantName`. */
  fixed(variantName: string): ExperimentSelectFn {
    return selectFn(() => variantName, { strategy: "fixed" });
  },
  /** Picks by weight, seeded by the run id: a run always gets the same variant. Throws if no weight is positive. */
  weighted(weights: Record<string, number>): ExperimentSelectFn {
    validateWeights(weights);
    const frozen = { ...weights };
    return selectFn(() => selectByWeight(hashToFloat(selectScope.getStore()?.runId ?? crypto.randomUUID()), frozen), { strategy: "weighted", weights: frozen });
  },
  /** Consistent hashing of `value` (a user id, say): the same value always gets the same variant. */
  bucket(value: unknown, options?: { weights?: Record<string, number> }): ExperimentSelectFn {
    if (options?.weights) validateWeights(options.weights);
    const text = value == null ? "" : String(value);
    return selectFn(
      (variantNames) => {
        const weights = options?.weights ?? (variantNames ? Object.fromEntries(variantNames.map((name) => [name, 1])) : undefined);
        if (!weights) throw new Error("experiment.bucket() needs explicit weights or the variant names group.experiment() gives it");
        return selectByWeight(hashToFloat(text), weights);
      },
      { strategy: "bucket", ...(options?.weights ? { weights: options.weights } : {}), ...(value == null ? { nullishBucket: true } : {}) },
    );
  },
  /** Your own picker (a feature flag, say); called once per run, inside the memoized step. */
  custom(fn: () => Promise<string> | string): ExperimentSelectFn {
    return selectFn(fn, { strategy: "custom" });
  },
};

function selectFn(fn: (variantNames?: string[]) => Promise<string> | string, config: ExperimentStrategyConfig): ExperimentSelectFn {
  return Object.assign(fn, { __experimentConfig: config });
}

/** A float in [0, 1) from the first 32 bits of the SHA-256 of `text` (Inngest's, so a bucket lands where it would there). */
function hashToFloat(text: string): number {
  return Number.parseInt(bytesToHex(sha256(new TextEncoder().encode(text))).slice(0, 8), 16) / 2 ** 32;
}

/** The variant whose share of the weights `point` falls in, variants in alphabetical order. */
function selectByWeight(point: number, weights: Record<string, number>): string {
  const entries = Object.entries(weights).sort(([a], [b]) => a.localeCompare(b));
  const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
  let cursor = 0;
  for (const [name, weight] of entries) {
    cursor += weight / total;
    if (point < cursor) return name;
  }
  return entries[entries.length - 1]![0];
}

function validateWeights(weights: Record<string, number>): void {
  for (const [name, weight] of Object.entries(weights)) {
    if (!Number.isFinite(weight) || weight < 0) throw new Error(`experiment weights: "${name}" is ${weight}; weights must be finite numbers >= 0`);
  }
  if (Object.values(weights).reduce((sum, weight) => sum + weight, 0) <= 0) throw new Error("experiment weights are all zero; at least one must be positive");
}
