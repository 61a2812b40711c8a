// Small statistics for the bench: percentiles, median of rounds, and number formatting.

/** The p-th percentile (0..100) of `values`, nearest rank. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export const median = (values) => percentile(values, 50);

/** Median, min and max of the rounds that produced a number (null if none did). */
export function summarize(rounds) {
  const ok = rounds.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (ok.length === 0) return { median: null, min: null, max: null };
  const sorted = [...ok].sort((a, b) => a - b);
  // The middle value (3 rounds → the 2nd); an even count averages the two middle ones.
  const mid = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return { median: mid, min: sorted[0], max: sorted[sorted.length - 1] };
}

/** A number with about 3 significant digits. */
export function fmt(value) {
  if (value === null || value === undefined) return "—";
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Rounds a number for the JSON file. */
export const round3 = (value) => (value === null || value === undefined ? null : Math.round(value * 1000) / 1000);
