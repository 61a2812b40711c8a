/**
 * The package as a new user gets it: `npm pack`, a project made by the packed CLI (`stepflare init`), the
 * tarball installed into it, and then, in one project (one pack, one install, shared by every test):
 * - the upgrade path: the project first runs the release before this package existed (the repository at
 *   PREVIOUS_RELEASE, packed from git), a run sleeps across the upgrade to the new tarball,
 *   `stepflare migrate` and a restart, and completes;
 * - `stepflare dev`: an event sent, its run completed, the dashboard answering;
 * - plain Node importing the client entry (no bundler) and sending an event;
 * - the generated project type-checking with its strict tsconfig, the package's declarations alone with
 *   no skipLibCheck and no @types/node, the generated test passing, and `stepflare doctor`.
 *
 * Installs with `--prefer-offline`: wrangler, typescript and vitest come from npm's cache (this repo's
 * `npm ci` filled it), the registry only for what the cache lacks.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childEnv, freePort, signalGroup, stopProcessGroup } from "../../bench/lib/processes.mjs";
import { createApp, NODE_APP_FUNCTION_IDS, serveApp } from "./remoteApp.ts";
import { waitFor } from "./wrangler.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
/** The last commit before the package (the repository as a Worker project used it): what a user upgrades from. */
const PREVIOUS_RELEASE = "09850a44ebbc5a0823ef34208e393c0833fb4a50";
const RUN_TIMEOUT_MS = 60_000;

const exec = promisify(execFile);
/** The children's environment: quiet wrangler, and nothing of this vitest's own (the generated project runs a vitest of its own). */
const env = Object.fromEntries(Object.entries(childEnv as Record<string, string>).filter(([name]) => !name.startsWith("VITEST") && name !== "NODE_OPTIONS" && name !== "TEST"));
let tmp = "";
let app = "";
let tarball = "";
let previous = "";
let previousIsGit = true;
const timings: Record<string, number> = {};

async function timed<T>(name: string, work: () => Promise<T>): Promise<T> {
  const start = Date.now();
  try {
    return await work();
  } finally {
    timings[name] = Date.now() - start;
  }
}

function run(command: string, args: string[], cwd: string, timeout = 180_000) {
  return exec(command, args, { cwd, env, timeout, maxBuffer: 32 * 1024 * 1024 });
}

interface Server {
  base: string;
  log(): string;
  stop(): Promise<void>;
}

/** Starts `command args` in its own process group in the project, and waits until GET /v1/functions answers (and it printed `readyText`). */
async function startServer(command: string, args: string[], port: number, readyText?: string): Promise<Server> {
  let log = "";
  const child: ChildProcess = spawn(command, args, { cwd: app, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-64_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const killOnExit = () => child.pid !== undefined && signalGroup(child.pid, "SIGKILL");
  process.once("exit", killOnExit);
  const server: Server = {
    base: `http://127.0.0.1:${port}`,
    log: () => log,
    async stop() {
      if (child.pid !== undefined) await stopProcessGroup(child.pid);
      process.removeListener("exit", killOnExit);
    },
  };
  await waitFor(`${command} ${args.join(" ")} on port ${port}`, 90_000, server, async () => {
    if (child.exitCode !== null) throw Object.assign(new Error(`exited (${child.exitCode})\n${log.slice(-4000)}`), { fatal: true });
    const res = await fetch(`${server.base}/v1/functions`, { signal: AbortSignal.timeout(2_000) });
    return res.status < 500 && (readyText === undefined || log.includes(readyText)) ? true : undefined;
  });
  return server;
}

interface RunDetail {
  status: string;
  output: unknown;
  steps: { name: string; status: string; attempts: number }[];
}

async function sendEvent(server: Server, name: string, data: object): Promise<string> {
  const res = await fetch(`${server.base}/e/dev`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name, data }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { ids: string[] }).ids[0]!;
}

/** The event's run, once `done` says it is far enough along. */
function runOf(server: Server, eventId: string, done: (run: RunDetail) => boolean): Promise<RunDetail> {
  return waitFor(`the run of ${eventId}`, RUN_TIMEOUT_MS, server, async () => {
    const runs = (await (await fetch(`${server.base}/v1/events/${eventId}/runs`)).json()) as { data?: { run_id: string }[] };
    const runId = runs.data?.[0]?.run_id;
    if (!runId) return undefined;
    const detail = ((await (await fetch(`${server.base}/v1/runs/${runId}`)).json()) as { data: RunDetail }).data;
    return done(detail) ? detail : undefined;
  });
}

/** The generated functions, plus one that sleeps across the upgrade (a user's own second function). */
const SLEEPER = `
/** Sleeps long enough to be in flight while the package is upgraded and the dev server restarted. */
export const acrossUpgrade = stepflare.createFunction({ id: "across-upgrade" }, { event: "test/upgrade" }, async ({ step }) => {
  const before = await step.run("before", () => "before the upgrade");
  await step.sleep("across", "12s");
  const after = await step.run("after", () => "after the upgrade");
  return { before, after };
});
`;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "stepflare-pkg-"));
  app = path.join(tmp, "my-app");
  // The new package: `npm pack` runs prepack (the build).
  const packed = await timed("npm pack (with build)", () => run(NPM, ["pack", "--pack-destination", tmp], ROOT));
  tarball = path.join(tmp, packed.stdout.trim().split("\n").at(-1)!);
  // The previous release, from git; a clone without that commit upgrades from this package itself instead.
  previous = path.join(tmp, "stepflare-previous.tgz");
  try {
    await run("git", ["-C", ROOT, "cat-file", "-e", `${PREVIOUS_RELEASE}^{commit}`], ROOT);
    await run("sh", ["-c", `git -C "${ROOT}" archive --format=tar.gz --prefix=package/ -o "${previous}" ${PREVIOUS_RELEASE} package.json tsconfig.json sdk worker migrations`], ROOT);
  } catch {
    console.warn(`package.test: commit ${PREVIOUS_RELEASE} is not in this clone: the upgrade starts from the new tarball`);
    previousIsGit = false;
    previous = tarball;
  }
  // The packed CLI makes the project, as `npx stepflare init` would.
  const extracted = path.join(tmp, "extracted");
  await mkdir(extracted);
  await run("tar", ["xzf", tarball, "-C", extracted], tmp);
  await timed("stepflare init", () => run(process.execPath, [path.join(extracted, "package/dist/sdk/cli/index.js"), "init", app], tmp));
  await writeFile(path.join(app, "src/functions.ts"), (await readFile(path.join(app, "src/functions.ts"), "utf8")) + SLEEPER);
  const index = await readFile(path.join(app, "src/index.ts"), "utf8");
  await writeFile(path.join(app, "src/index.ts"), index.replace("import { helloWorld, stepflare }", "import { acrossUpgrade, helloWorld, stepflare }").replace("functions: [helloWorld]", "functions: [helloWorld, acrossUpgrade]"));
  await timed("npm install (previous release + wrangler, typescript, vitest)", () => run(NPM, ["install", "--prefer-offline", "--no-audit", "--no-fund", previous], app));
}, 300_000);

let server: Server | undefined;
/** An Inngest SDK app `stepflare dev --app` keeps synced. */
let remote: Awaited<ReturnType<typeof serveApp>> | undefined;
let remoteApp: ReturnType<typeof createApp> | undefined;

afterAll(async () => {
  await server?.stop();
  await remote?.stop();
  console.log(`package.test timings (ms): ${JSON.stringify(timings)}`);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("the stepflare package", () => {
  it("upgrades a project with a run in flight: npm install of the new tarball, stepflare migrate, restart; the run completes", async () => {
    const persist = path.join(app, ".wrangler/state");
    const wrangler = path.join(app, "node_modules/.bin/wrangler");
    // The previous release, run as its users ran it: wrangler directly (it had no CLI).
    await run(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist], app);
    const port = await freePort();
    const old = await timed("previous release's dev server ready", async () =>
      startServer(wrangler, ["dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(await freePort()), "--persist-to", persist, "--test-scheduled", "--var", "STEPFLARE_DEV:1", "--show-interactive-dev-session=false"], port),
    );
    let sleeping = "";
    try {
      sleeping = await sendEvent(old, "test/upgrade", {});
      await runOf(old, sleeping, (run) => run.steps.some((step) => step.name === "before" && step.status === "Completed"));
    } finally {
      await old.stop();
    }

    await timed("npm install (new tarball)", () => run(NPM, ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], app));
    expect(JSON.parse(await readFile(path.join(app, "node_modules/stepflare/package.json"), "utf8"))).toMatchObject({ license: "MIT" });
    await timed("stepflare migrate", () => run("npx", ["stepflare", "migrate", "--local", "--persist-to", persist], app));

    const newPort = await freePort();
    remoteApp = createApp(`http://127.0.0.1:${newPort}`, { id: "node-app" });
    remote = await serveApp(remoteApp);
    server = await timed("stepflare dev ready", async () =>
      startServer("npx", ["stepflare", "dev", "--ip", "127.0.0.1", "--port", String(newPort), "--persist-to", persist, "--app", remote!.url, "--sync-interval", "1", "--", "--inspector-port", String(await freePort()), "--show-interactive-dev-session=false"], newPort, "Stepflare dev server ready"),
    );
    expect(server.log()).toContain(`dashboard  http://127.0.0.1:${newPort}/`);
    const done = await timed("the sleeping run completes after the restart", () => runOf(server!, sleeping, (run) => run.status !== "Running" && run.status !== "Queued"));
    expect(done.status).toBe("Completed");
    expect(done.output).toEqual({ before: "before the upgrade", after: "after the upgrade" });
    // "before" ran once, before the upgrade: replayed from its record, not run again.
    expect(done.steps.find((step) => step.name === "before")?.attempts).toBe(1);
    if (!previousIsGit) console.warn("package.test: upgraded from the new tarball to itself");
  }, 240_000);

  it("runs the generated function under stepflare dev, and the dashboard answers", async () => {
    const eventId = await sendEvent(server!, "demo/hello", { name: "Ada" });
    const done = await runOf(server!, eventId, (run) => run.status === "Completed");
    expect(done.output).toEqual({ greeting: "Hello, Ada!" });
    const dashboard = await fetch(`${server!.base}/`);
    expect(dashboard.status).toBe(200);
    expect(dashboard.headers.get("content-type")).toContain("text/html");
  }, 90_000);

  it("syncs the --app Inngest SDK app, and again when its functions change", async () => {
    const functionIds = async () => {
      const apps = (await (await fetch(`${server!.base}/v1/apps`)).json()) as { data: { id: string; functions: { id: string }[] }[] };
      return apps.data.find((app) => app.id === "node-app")?.functions.map((fn) => fn.id).sort();
    };
    await waitFor("the app's first sync", 30_000, server!, async () => ((await functionIds())?.length === NODE_APP_FUNCTION_IDS.length ? true : undefined));
    // The app restarts on its port with one function: the next sync (1 s) replaces its functions.
    const url = new URL(remote!.url);
    await remote!.stop();
    remote = await serveApp(remoteApp!, remoteApp!.functions.slice(0, 1), Number(url.port));
    await waitFor("the app's sync after its change", 30_000, server!, async () => ((await functionIds())?.join() === "node-app-multi-step" ? true : undefined));
    expect(server!.log()).toContain("synced app node-app");
  }, 90_000);

  it("sends an event from plain Node through the client entry point (no bundler)", async () => {
    const script = path.join(app, "send.mjs");
    await writeFile(
      script,
      `import { Stepflare } from "stepflare";\nconst client = new Stepflare({ id: "node-sender", baseUrl: process.argv[2], eventKey: "dev" });\nconst { ids } = await client.send({ name: "demo/hello", data: { name: "Node" } });\nconsole.log(ids[0]);\n`,
    );
    const { stdout } = await run(process.execPath, [script, server!.base], app, 30_000);
    const done = await runOf(server!, stdout.trim(), (run) => run.status === "Completed");
    expect(done.output).toEqual({ greeting: "Hello, Node!" });
  }, 90_000);

  it("type-checks: the project with its strict tsconfig, and the package's declarations with no skipLibCheck and no @types/node", async () => {
    expect(existsSync(path.join(app, "node_modules/@types/node"))).toBe(false);
    await timed("tsc (generated project)", () => run(path.join(app, "node_modules/.bin/tsc"), ["--noEmit", "-p", "."], app));
    // The Worker's sources alone (not vitest's), every declaration file checked: the package's, hono's, zod's.
    await writeFile(
      path.join(app, "tsconfig.strict.json"),
      JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { skipLibCheck: false }, include: ["src"] }),
    );
    await timed("tsc (no skipLibCheck)", () => run(path.join(app, "node_modules/.bin/tsc"), ["--noEmit", "-p", "tsconfig.strict.json"], app));
  }, 120_000);

  it("passes the generated test on stepflare/testing, and doctor names what a deploy lacks", async () => {
    await timed("generated npm test", () => run(path.join(app, "node_modules/.bin/vitest"), ["run"], app, 60_000));
    const doctor = await run("npx", ["stepflare", "doctor"], app).then(
      () => ({ code: 0, stdout: "" }),
      (err: { code: number; stdout: string }) => err,
    );
    // Everything the engine needs is there; only the placeholder database id stands between it and a deploy.
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toContain("database_id is a placeholder");
    expect(doctor.stdout).toContain("1 problem to fix");
  }, 90_000);
});
