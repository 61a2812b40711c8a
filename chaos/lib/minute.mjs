// The minute: the kills aimed at a minute boundary (planned from the seed, made when their boundary
// comes) and the window of minutes the cron check covers.
import { accepted, killTimes, lives, log, minuteKills, server, sleep } from "./context.mjs";
import { killServer, startServer } from "./server.mjs";

// The minute: the cron function (chaos-cron, `* * * * *`) runs once per minute boundary, started
// by the Scheduler's alarm, which fires at the minute. Its first tick runs when the first server
// life answers its first request (the Scheduler ticks at once when first armed), so the crons are
// stored from then on. Kills aimed at a minute: "before" comes 0.5–2.5 s ahead of the boundary, so
// the server is down when the alarm is due and the tick runs after the restart; "after" comes
// 5–40 ms (short) or 5–80 ms (full) past it, cutting the tick (or the run it started) mid-flight,
// so the tick runs again from its retry alarm. A kill at a minute comes when its boundary does:
// before a regular kill whose moment (or restart) it precedes, before an outage it would fall in,
// or after all the regular kills.

export const MINUTE_MS = 60_000;
/** About how long a kill and restart take: a kill at a minute that would fall within one goes first. */
export const RESTART_MS = 5_000;
/** A boundary this close to the first tick may or may not be one its crons were stored for. */
const FIRST_TICK_SLACK_MS = 2_000;
/** How long after its minute a cron run may still be under way when the runs are checked. */
export const CRON_RUN_GRACE_MS = 20_000;
export const isoMinute = (t) => new Date(t).toISOString().slice(11, 19);

/**
 * Plans the kills at a minute: the short run has one, before or after its boundary (from the seed);
 * the full run one of each, at two boundaries (`mode`, from --minute, picks).
 */
export function planMinuteKills(rng, mode, short) {
  const pick = rng.int(2);
  const minuteKinds = { before: ["before"], after: ["after"], both: pick === 0 ? ["before", "after"] : ["after", "before"], auto: short ? [pick === 0 ? "before" : "after"] : null }[mode] ?? (pick === 0 ? ["before", "after"] : ["after", "before"]);
  // "after": 5–40 ms short, within the tick's first reads, so that mostly the tick is cut, not the
  // cron's run (whose cut step would add a retry backoff to the run's length); 5–80 ms full.
  for (const kind of minuteKinds) minuteKills.push({ kind, offsetMs: kind === "before" ? -rng.between(500, 2500) : rng.between(5, short ? 40 : 80) });
  log(`kills at a minute planned: ${minuteKills.map((m) => (m.offsetMs < 0 ? `${(-m.offsetMs / 1000).toFixed(1)} s before` : `${m.offsetMs.toFixed(0)} ms after`)).join(", ")} a boundary`);
}

/** The first minute boundary whose schedule the first tick stored: the cron check starts there. */
export function cronWindowStart() {
  return Math.ceil((lives[0].readyAt + FIRST_TICK_SLACK_MS) / MINUTE_MS) * MINUTE_MS;
}

/**
 * Makes the planned minute kills whose moment comes within `horizonMs` (in order, each at a later
 * boundary than the one before), restarting the server after each; Infinity waits for them all.
 */
export async function minuteKillsWithin(horizonMs) {
  for (const plan of minuteKills) {
    if (plan.killAt) continue;
    const previous = Math.max(0, ...minuteKills.filter((m) => m.boundary).map((m) => m.boundary));
    const earliest = Math.max(Date.now() + 500 - plan.offsetMs, cronWindowStart(), previous + MINUTE_MS);
    const boundary = Math.ceil(earliest / MINUTE_MS) * MINUTE_MS;
    const at = boundary + plan.offsetMs;
    if (at > Date.now() + horizonMs) return;
    await sleep(at - Date.now());
    const killMs = await killServer();
    Object.assign(plan, { boundary, killAt: killTimes.at(-1), life: server.life });
    const off = plan.killAt - boundary;
    log(
      `kill -9 #m${minuteKills.indexOf(plan) + 1} ${off < 0 ? `${(-off / 1000).toFixed(1)} s before` : `${off} ms after`} the minute ${isoMinute(boundary)} ` +
        `(server life ${server.life}, its group gone in ${killMs} ms); ${accepted.size} events accepted so far`,
    );
    await startServer();
    plan.upAt = lives.at(-1).readyAt;
  }
}

/** The minute boundaries the cron check covers: from the first the first tick stored, to `end`. */
export function cronMinutes(end) {
  const minutes = [];
  for (let t = cronWindowStart(); t <= end; t += MINUTE_MS) minutes.push(t);
  return minutes;
}
