// The runner's shared context: where things are, the log, and the state that several modules of
// the runner share while a run goes on. Each piece of state is written by the module named beside
// it and only read elsewhere; anything one module alone uses stays in that module.
import fs from "node:fs";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "..", "..");
/** The chaos Worker's config (bindings, main = chaos/index.ts); runs use a frozen build of it (see freezeWorker). */
export const SOURCE_CONFIG = path.join(ROOT, "chaos", "wrangler.toml");
export const WRANGLER = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
/** The D1 shards the chaos Worker binds (DB, DB_1, …: the `[[d1_databases]]` of SOURCE_CONFIG), each migrated and read. */
export const SHARDS = [...fs.readFileSync(SOURCE_CONFIG, "utf8").matchAll(/^\[\[d1_databases\]\]\s*\nbinding = "(DB(?:_[1-9][0-9]*)?)"$/gm)].map((match) => match[1]);
export const FINAL = new Set(["Completed", "Failed", "Cancelled"]);
/** A hit processed by the counter this long after a kill may still come from before it (event-loop lag). */
export const HIT_CLOCK_SLACK_MS = 250;
export const POLL_MS = 2_000;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
export const log = (message) => console.log(`[chaos ${elapsed()}] ${message}`);

/**
 * This run's directory (`outDir`, which run.mjs makes with makeOutDir once the options are read):
 * one wrangler log per server life, the frozen build and its config (`config`), the persisted
 * state (`persistDir`), the report.
 */
export const paths = { outDir: "", persistDir: "", config: "" };
export function makeOutDir() {
  const outDir = fs.mkdtempSync(path.join("/tmp", `stepflare-chaos-${new Date().toISOString().replace(/[:.]/g, "-")}-`));
  Object.assign(paths, { outDir, persistDir: path.join(outDir, "state"), config: path.join(outDir, "wrangler.toml") });
}

/** The dev server (lib/server.mjs): the leader of its process group, its URL, its life, whether it answers. */
export const server = { child: null, baseUrl: "", life: 0, up: false };
/** When each kill came (lib/server.mjs). */
export const killTimes = [];
/** Each server life: when it answered first, and when it was killed (null for the last) (lib/server.mjs). */
export const lives = []; // { life, readyAt, killedAt }

/** Every step execution the counter saw (lib/counter.mjs). */
export const hits = []; // { root, key, step, attempt, event, run, at }

// What was sent (lib/send.mjs).
export const accepted = new Map(); // root → { at, life }
export const firstSent = new Map(); // root → when a request first carried it: nothing of it ran before
export const sendStats = { requests: 0, ok: 0, cut: 0, refused: 0, refusedInOutage: 0, viaRpc: 0, okViaRpc: 0, cutIds: [], refusals: [] };

/** The outage: its plan, whether it is on, when it came (lib/outage.mjs). */
export const outage = { on: false, plan: null, startedAt: null, endedAt: null, burstAcceptedAt: null, sweptAt: null };

/** The kills at a minute: planned, then where they came (lib/minute.mjs). */
export const minuteKills = []; // { kind, offsetMs, boundary?, killAt?, upAt?, life? }
