// Printing the results table and writing bench/results/latest.json.
import { fmt, round3 } from "./stats.mjs";

export const SYSTEMS = ["stepflare", "workflows", "floor"];

/** One row per (scenario, metric): the median and range of each system's rounds. */
export function buildRows(scenarios, results) {
  const rows = [];
  for (const scenario of scenarios) {
    for (const metric of scenario.metrics) {
      const row = {
        scenarioId: scenario.id,
        metric: metric.key,
        name: scenario.metrics.length > 1 ? `${scenario.name} (${metric.label})` : scenario.name,
        unit: metric.unit,
        better: metric.better,
      };
      for (const system of SYSTEMS) row[system] = results[scenario.id]?.[metric.key]?.[system] ?? null;
      rows.push(row);
    }
  }
  return rows;
}

/** The printed table: scenario, unit, each system's median, the ratios, each system's range. */
export function formatTable(rows) {
  const header = ["scenario", "unit", "stepflare", "workflows", "floor", "sf/wf", "sf/floor", "range sf | wf | floor"];
  const ratio = (a, b) => (a?.median && b?.median ? `${(a.median / b.median).toFixed(2)}×` : "—");
  const span = (s) => (s ? (s.min === null ? "—" : `${fmt(s.min)}–${fmt(s.max)}`) : "—");
  const body = rows.map((row) => [
    row.name,
    row.unit,
    fmt(row.stepflare?.median),
    fmt(row.workflows?.median),
    fmt(row.floor?.median),
    ratio(row.stepflare, row.workflows),
    ratio(row.stepflare, row.floor),
    SYSTEMS.map((system) => span(row[system])).join(" | "),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i].length)));
  const line = (cells) => cells.map((cell, i) => (i >= 2 && i <= 6 ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** What bench/results/latest.json holds. */
export function resultsJson({ rows, targets, ratios, notes, problems, meta, usage }) {
  const pick = (summary) => round3(summary?.median ?? null);
  const span = (summary) => (summary && summary.min !== null ? [round3(summary.min), round3(summary.max)] : null);
  return {
    ...meta,
    scenarios: rows.map((row) => ({
      name: row.name,
      unit: row.unit,
      stepflare: pick(row.stepflare),
      workflows: pick(row.workflows),
      floor: pick(row.floor),
      range: Object.fromEntries(SYSTEMS.filter((s) => row[s]).map((s) => [s, span(row[s])])),
      rounds: Object.fromEntries(SYSTEMS.filter((s) => row[s]).map((s) => [s, row[s].rounds.map(round3)])),
    })),
    targets,
    ratios,
    stepflareUsagePerRun: usage,
    notes,
    problems,
  };
}
