// `stepflare migrate --local` run from the CLI's TypeScript sources, for this repository's `npm run dev`, where no
// build exists and Node 20 runs no TypeScript: vite (vitest's) loads sdk/cli/migrate.ts, whose imports are all
// static (vite's runner closes once the module is loaded). Not shipped (package.json's files).
import { fileURLToPath } from "node:url";
import { runnerImport } from "vite";

const { module } = await runnerImport(fileURLToPath(new URL("./migrate.ts", import.meta.url)));
try {
  await module.migrate({ remote: false });
} catch (err) {
  // A CliError (a missing wrangler.toml, a wrong migrations_dir, a failed wrangler) says what to do: no stack.
  console.error(err instanceof Error && err.constructor.name === "CliError" ? `stepflare: ${err.message}` : err);
  process.exitCode = 1;
}
