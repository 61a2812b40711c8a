// Inngest code with one import changed: with the import swapped back to "inngest", it must
// type-check against the real inngest package. test/compat.v4docs.functions.ts is v4's docs;
// test/inngestSuite.functions.ts is Inngest's own suite. (v3-only code, EventSchemas and
// InngestMiddleware in test/inngestSuite.v3.functions.ts, has no counterpart in the installed v4
// package: it type-checks against this SDK alone.)
import path from "node:path";
import { readFileSync } from "node:fs";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = path.join(import.meta.dirname, "..");
const OUR_IMPORT = 'from "../sdk/index.ts";';

/** The diagnostics of `file` with its import of this SDK swapped for "inngest". */
function diagnosticsAgainstInngest(file: string): string[] {
  const ours = path.join(root, file);
  const source = readFileSync(ours, "utf8");
  expect(source.split(OUR_IMPORT).length).toBe(2);
  const theirs = ours.replace(/\.ts$/, ".inngest-check.ts");
  const swapped = source.replace(OUR_IMPORT, 'from "inngest";');

  const config = ts.getParsedCommandLineOfConfigFile(path.join(root, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
  const host = ts.createCompilerHost(config.options);
  // The swapped file exists only in memory, beside the original, so its imports resolve alike.
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) => (path.resolve(name) === theirs ? ts.createSourceFile(name, swapped, version) : getSourceFile(name, version, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === theirs || fileExists(name);
  const program = ts.createProgram({ rootNames: [theirs, path.join(root, "test/env.d.ts")], options: config.options, host });
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file && path.resolve(d.file.fileName) === theirs);
  return diagnostics.map((d) => `${d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}

describe("Inngest code with the import changed", () => {
  it("the v4 docs functions type-check against the inngest package", () => {
    expect(diagnosticsAgainstInngest("test/compat.v4docs.functions.ts")).toEqual([]);
  }, 60_000);

  it("Inngest's own suite's functions type-check against the inngest package", () => {
    expect(diagnosticsAgainstInngest("test/inngestSuite.functions.ts")).toEqual([]);
  }, 60_000);
});
