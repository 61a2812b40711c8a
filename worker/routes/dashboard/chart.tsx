const HOUR_MS = 3_600_000;
const BAR_WIDTH = 8;
const GAP = 2;
const HEIGHT = 48;

export interface HourCount {
  hour: string;
  runs: number;
  failures: number;
}

/** The last `hours` hours up to the current one, each with its counts (zero where the API listed none). */
export function lastHours(counts: HourCount[], now: number, hours = 24): { start: number; runs: number; failures: number }[] {
  const byHour = new Map(counts.map((count) => [Math.floor(Date.parse(count.hour) / HOUR_MS) * HOUR_MS, count]));
  const current = Math.floor(now / HOUR_MS) * HOUR_MS;
  return Array.from({ length: hours }, (_, i) => {
    const start = current - (hours - 1 - i) * HOUR_MS;
    const count = byHour.get(start);
    return { start, runs: count?.runs ?? 0, failures: count?.failures ?? 0 };
  });
}

/**
 * Runs and failures per hour over the last 24 hours, as an inline SVG: one bar of runs per hour with
 * its failures over it in red. Sizes are attributes and colours classes (the CSP forbids style attributes).
 */
export function RunsChart({ hours, now }: { hours: HourCount[]; now: number }) {
  const slots = lastHours(hours, now);
  const max = Math.max(1, ...slots.map((slot) => slot.runs));
  const width = slots.length * (BAR_WIDTH + GAP);
  const total = slots.reduce((sum, slot) => sum + slot.runs, 0);
  const failed = slots.reduce((sum, slot) => sum + slot.failures, 0);
  return (
    <figure class="chart-box">
      <svg class="chart" viewBox={`0 0 ${width} ${HEIGHT + 1}`} preserveAspectRatio="none" role="img" aria-label={`${total} runs and ${failed} failures in the last 24 hours`}>
        <line class="axis" x1="0" y1={HEIGHT + 0.5} x2={width} y2={HEIGHT + 0.5} />
        {slots.map((slot, i) => {
          const x = i * (BAR_WIDTH + GAP);
          const runsHeight = (slot.runs / max) * HEIGHT;
          const failuresHeight = (slot.failures / max) * HEIGHT;
          return (
            <g>
              <title>{`${new Date(slot.start).toISOString().slice(11, 16)} UTC: ${slot.runs} runs, ${slot.failures} failed`}</title>
              <rect class="runs" x={x} y={HEIGHT - runsHeight} width={BAR_WIDTH} height={runsHeight} />
              {slot.failures > 0 ? <rect class="failures" x={x} y={HEIGHT - failuresHeight} width={BAR_WIDTH} height={failuresHeight} /> : null}
            </g>
          );
        })}
      </svg>
      <figcaption class="chart-legend">
        <span>24 h ago</span>
        <span>
          {total} {total === 1 ? "run" : "runs"}, {failed} failed
        </span>
        <span>now</span>
      </figcaption>
    </figure>
  );
}
