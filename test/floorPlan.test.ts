import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

// The floor plan of worker/ (docs/architecture.md), checked: each room imports only rooms of its
// own layer or below, a run's object is looked up in one module, and the root holds entry points.

/** Top to bottom. A module may import (values) from its own layer and the layers below it. */
const LAYERS: readonly (readonly string[])[] = [
  ["(entry)"],
  ["routes"],
  ["admin", "schedule", "dispatch"],
  ["runs", "flow"],
  ["remote", "ingest", "views", "traces"],
  ["queue", "db"],
  ["platform"],
  ["sdk"],
];
const ENTRY_POINTS = ["index.ts", "rpc.ts", "serve.ts"];

const ROOT = path.resolve(import.meta.dirname, "..");
const WORKER = path.join(ROOT, "worker");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return /\.tsx?$/.test(name) && !/\.test\.tsx?$/.test(name) ? [full] : [];
  });
}

function roomOf(file: string): string {
  const relative = path.relative(ROOT, file).split(path.sep);
  if (relative[0] === "sdk") return "sdk";
  return relative.length === 2 ? "(entry)" : relative[1]!;
}

function layerOf(room: string): number {
  const layer = LAYERS.findIndex((rooms) => rooms.includes(room));
  if (layer < 0) throw new Error(`room ${room} has no layer in LAYERS: add it`);
  return layer;
}

/** The relative modules a file imports values from (`import type` is erased, and allowed anywhere). */
function valueImports(file: string): string[] {
  const source = readFileSync(file, "utf8");
  const specifiers = [...source.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?from\s+"(\.[^"]+)"/gm)].map((match) => match[1]!);
  return specifiers.map((specifier) => path.resolve(path.dirname(file), specifier));
}

const files = sourceFiles(WORKER);

describe("the floor plan of worker/", () => {
  it("has each room import only its own layer and the layers below", () => {
    const upward = files.flatMap((file) =>
      valueImports(file)
        .filter((target) => layerOf(roomOf(target)) < layerOf(roomOf(file)))
        .map((target) => `${path.relative(ROOT, file)} imports ${path.relative(ROOT, target)}`),
    );
    expect(upward).toEqual([]);
  });

  it("looks a run's object up in runs/door.ts alone", () => {
    const lookups = files.filter((file) => /RUNS\.(get|idFromName)\(/.test(readFileSync(file, "utf8"))).map((file) => path.relative(ROOT, file));
    expect(lookups.filter((file) => file !== "worker/platform/bindings.ts")).toEqual(["worker/runs/door.ts"]);
  });

  it("keeps only entry points at the root, and a README in every room", () => {
    const root = readdirSync(WORKER).filter((name) => statSync(path.join(WORKER, name)).isFile());
    expect(root.sort()).toEqual(ENTRY_POINTS);
    const rooms = readdirSync(WORKER).filter((name) => statSync(path.join(WORKER, name)).isDirectory());
    for (const room of rooms) {
      layerOf(room);
      expect(readdirSync(path.join(WORKER, room)), `worker/${room}/README.md`).toContain("README.md");
    }
  });
});
