/**
 * `stepflare init <dir>`: a ready Worker project. Its wrangler.toml has every binding, Durable Object
 * migration and cron the engine needs (as the repository's own wrangler.toml), its D1 migrations come
 * from the installed package, `.dev.vars` switches dev mode on locally, and it has a first function
 * with a test on the package's test engine (`stepflare/testing`).
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { CliError, packageInfo } from "./project.ts";

/** The files of a new project named `name`, by path. */
export function projectFiles(name: string, version: string, devDependencies: Record<string, string>): Record<string, string> {
  const dev = (pkg: string, fallback: string) => devDependencies[pkg] ?? fallback;
  const packageJson = {
    name,
    version: "0.0.0",
    private: true,
    type: "module",
    scripts: {
      dev: "stepflare dev",
      migrate: "stepflare migrate --local",
      doctor: "stepflare doctor",
      deploy: "stepflare doctor && stepflare migrate --remote && wrangler deploy",
      test: "vitest run",
      typecheck: "tsc --noEmit",
    },
    dependencies: { stepflare: `^${version}` },
    devDependencies: {
      "@cloudflare/workers-types": dev("@cloudflare/workers-types", "^4.20260702.1"),
      typescript: dev("typescript", "^5.9.3"),
      vitest: dev("vitest", "^4.1.12"),
      wrangler: dev("wrangler", "^4.86.0"),
    },
  };
  return {
    "package.json": `${JSON.stringify(packageJson, null, 2)}\n`,
    "wrangler.toml": wranglerToml(name),
    ".dev.vars": "# Local only (`wrangler deploy` never reads this file): dev mode, where any event key works and the API and dashboard are open.\nSTEPFLARE_DEV=1\n",
    ".gitignore": "node_modules/\n.wrangler/\n.dev.vars\n",
    "tsconfig.json": `${JSON.stringify(
      {
        compilerOptions: {
          target: "es2022",
          module: "es2022",
          moduleResolution: "bundler",
          lib: ["es2022"],
          types: ["@cloudflare/workers-types"],
          strict: true,
          noEmit: true,
          isolatedModules: true,
          verbatimModuleSyntax: true,
          // vitest's own dependencies' declarations (tinybench) do not check against the Workers types.
          skipLibCheck: true,
        },
        include: ["src", "test"],
      },
      null,
      2,
    )}\n`,
    "src/index.ts": `// The Worker: the event API, the REST API and dashboard, the queue consumer and the cron tick, for your functions.
import { serve } from "stepflare/worker";
import { helloWorld, stepflare } from "./functions";

// The engine's Durable Object classes (RunObject, Scheduler, FlowObject), which wrangler.toml binds.
export * from "stepflare/worker";

export default serve({ client: stepflare, functions: [helloWorld] });
`,
    "src/functions.ts": `import { Stepflare } from "stepflare";

export const stepflare = new Stepflare({ id: ${JSON.stringify(name)} });

/** Runs for every demo/hello event: one step, a durable sleep, and a result you can see in the dashboard. */
export const helloWorld = stepflare.createFunction({ id: "hello-world" }, { event: "demo/hello" }, async ({ event, step }) => {
  const greeting = await step.run("greet", () => \`Hello, \${event.data.name ?? "world"}!\`);
  await step.sleep("pause", "1s");
  return { greeting };
});
`,
    "test/functions.test.ts": `import { TestRun } from "stepflare/testing";
import { describe, expect, it } from "vitest";
import { helloWorld } from "../src/functions";

describe("hello-world", () => {
  it("greets by name, across its sleep", async () => {
    // A run in memory, replayed the way a RunObject replays it; its clock skips the sleep.
    const run = new TestRun(helloWorld.handler, { events: [{ id: "01TEST", name: "demo/hello", data: { name: "Ada" }, ts: Date.now() }] });
    expect(await run.drive()).toEqual({ type: "completed", output: { greeting: "Hello, Ada!" } });
    expect(run.step("greet")).toMatchObject({ status: "completed", output: "Hello, Ada!" });
  });
});
`,
    "README.md": `# ${name}

Durable functions on Cloudflare Workers with [Stepflare](https://www.npmjs.com/package/stepflare).

\`\`\`sh
npm install
npm run dev        # applies the D1 migrations, starts wrangler dev on http://localhost:8787 (the dashboard)
curl -X POST http://localhost:8787/e/dev -H 'content-type: application/json' -d '{"name":"demo/hello","data":{"name":"Ada"}}'
npm test           # src/functions.ts's test, on stepflare/testing
npm run doctor     # what a deploy still needs (a D1 database id, secrets)
\`\`\`

Your functions live in \`src/functions.ts\`; add each new one to \`serve()\` in \`src/index.ts\`.
After upgrading stepflare, run \`npm run migrate\` (and \`npx stepflare migrate --remote\` for the deployed database).
`,
  };
}

export function wranglerToml(name: string): string {
  return `name = "${name}"
main = "src/index.ts"
compatibility_date = "2026-04-01"
# AsyncLocalStorage: a step body's own attempt, and log lines not repeated on replay.
compatibility_flags = ["nodejs_als"]
# Errors point at src/ (and node_modules/stepflare's sources), not at the bundle: in \`wrangler dev\`, and in a deploy's logs.
upload_source_maps = true

# Dev mode is never set here: .dev.vars (local only) and \`stepflare dev\` switch it on. A deploy is closed and
# needs the secrets STEPFLARE_SIGNING_KEY and STEPFLARE_EVENT_KEYS (\`npx wrangler secret put <NAME>\`).

[observability]
enabled = true

[[d1_databases]]
binding = "DB"
database_name = "${name}"
# A placeholder, fine for \`wrangler dev\`: before a deploy, \`npx wrangler d1 create ${name}\` and put its id here.
database_id = "00000000-0000-0000-0000-000000000000"
# The installed release's migrations: \`npx stepflare migrate\` applies them after an upgrade.
migrations_dir = "node_modules/stepflare/migrations"
# More D1 databases share the event log, the runs index and the waits when one is not enough (Stepflare's
# docs/shards.md): bind each as DB_1, DB_2, … with its own database_id and this migrations_dir.

[[queues.producers]]
binding = "EVENTS"
queue = "${name}-events"

[[queues.consumers]]
queue = "${name}-events"
max_batch_size = 100
# Near zero: event → first step is a latency goal, and the default 5 s batch wait would dominate it.
max_batch_timeout = 0
max_retries = 10

[[durable_objects.bindings]]
name = "RUNS"
class_name = "RunObject"

[[durable_objects.bindings]]
name = "SCHEDULER"
class_name = "Scheduler"

[[durable_objects.bindings]]
name = "FLOWS"
class_name = "FlowObject"

# Stepflare's Durable Object migrations, by the release that added them (keep them; add your own tags after).
[[migrations]]
tag = "v1"
new_sqlite_classes = ["RunObject", "Scheduler"]

[[migrations]]
tag = "v2"
new_sqlite_classes = ["FlowObject"]

[triggers]
# The tick: cron functions, sleeping runs' safety net, retention.
crons = ["* * * * *"]
`;
}

/** A Worker name wrangler accepts, from a folder's name. */
export function workerName(dir: string): string {
  const name = path.basename(path.resolve(dir)).toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 54);
  return name || "stepflare-app";
}

/** Writes a new project into `dir` (which must be empty or absent), and says what to do next. */
export function init(dir: string, options: { name?: string } = {}): void {
  const target = path.resolve(dir);
  if (existsSync(target) && readdirSync(target).length > 0) throw new CliError(`${dir} is not empty: pick a new folder`);
  const name = options.name ?? workerName(target);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new CliError(`--name must be lower-case letters, digits and dashes (a Worker's name), not ${JSON.stringify(name)}`);
  const { version, devDependencies } = packageInfo();
  for (const [file, content] of Object.entries(projectFiles(name, version, devDependencies))) {
    mkdirSync(path.dirname(path.join(target, file)), { recursive: true });
    writeFileSync(path.join(target, file), content);
  }
  const cd = path.relative(process.cwd(), target) || ".";
  console.log(`Created ${name} in ${target} (stepflare ${version}).

Next:
  cd ${cd}
  npm install
  npm run dev          # http://localhost:8787 is the dashboard
  curl -X POST http://localhost:8787/e/dev -H 'content-type: application/json' -d '{"name":"demo/hello","data":{"name":"Ada"}}'`);
}
