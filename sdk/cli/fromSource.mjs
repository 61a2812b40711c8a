// The `stepflare` command run from its TypeScript sources, for this repository's own scripts (`npm run dev`:
// `node sdk/cli/fromSource.mjs migrate --local`), where no build exists and Node 20 runs no TypeScript:
// vite (vitest's) loads sdk/cli/index.ts, which runs the command in process.argv. Not shipped (package.json).
import { fileURLToPath } from "node:url";
import { runnerImport } from "vite";

await runnerImport(fileURLToPath(new URL("./index.ts", import.meta.url)));
