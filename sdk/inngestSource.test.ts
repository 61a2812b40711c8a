// test/compat.v4docs.functions.ts is Inngest v4 code with one import changed: with the import
// swapped back to "inngest", it must type-check against the real inngest package.
import path from "node:path";
import { readFileSync } from "node:fs";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = path.join(import.meta.dirname, "..");
const ours = path.join(root, "test/compat.v4docs.functions.ts");
const OUR_IMPORT = 'from "../sdk/index.ts";';

describe("the v4 docs functions", () => {
  it("differ from Inngest code only by the SDK's import, and type-check against the inngest package", () => {
    const source = readFileSync(ours, "utf8");
    expect(source.split(OUR_IMPORT).length).toBe(2);
    const theirs = path.join(root, "test/compat.v4docs.inngest-check.ts");
    const swapped = source.replace(OUR_IMPORT, 'from "inngest";');

    const config = ts.getParsedCommandLineOfConfigFile(path.join(root, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
    const host = ts.createCompilerHost(config.options);
    // The swapped file exists only in memory, beside the original, so its imports resolve alike.
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (file, version, ...rest) => (path.resolve(file) === theirs ? ts.createSourceFile(file, swapped, version) : getSourceFile(file, version, ...rest));
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (file) => path.resolve(file) === theirs || fileExists(file);
    const program = ts.createProgram({ rootNames: [theirs, path.join(root, "test/env.d.ts")], options: config.options, host });
    const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file && path.resolve(d.file.fileName) === theirs);
    expect(diagnostics.map((d) => `${d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`)).toEqual([]);
  }, 60_000);
});
