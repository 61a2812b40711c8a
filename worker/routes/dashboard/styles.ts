// The dashboard's stylesheet, served as /assets/app.css (the CSP forbids inline styles). System fonts
// only; light and dark follow the system through prefers-color-scheme; one column on a phone.
export const APP_CSS = `
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --panel: #ffffff; --text: #1b1f24; --muted: #5f6b7a; --border: #dde1e6;
  --accent: #c2410c; --accent-text: #ffffff; --link: #1d4ed8; --code-bg: #f0f2f5;
  --ok: #15803d; --ok-bg: #dcfce7; --bad: #b91c1c; --bad-bg: #fee2e2; --warn: #a16207; --warn-bg: #fef3c7;
  --info: #1d4ed8; --info-bg: #dbeafe; --idle: #4b5563; --idle-bg: #e5e7eb; --sleep: #6d28d9; --sleep-bg: #ede9fe;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1216; --panel: #171b21; --text: #e6e9ee; --muted: #97a1ae; --border: #2a3039;
    --accent: #fb923c; --accent-text: #111111; --link: #93b4ff; --code-bg: #1f242c;
    --ok: #4ade80; --ok-bg: #12301d; --bad: #f87171; --bad-bg: #3a1616; --warn: #facc15; --warn-bg: #33290a;
    --info: #93b4ff; --info-bg: #16244a; --idle: #b6bec9; --idle-bg: #2a3039; --sleep: #c4b5fd; --sleep-bg: #2a2147;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: var(--link); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: var(--mono); font-size: 13px; }
h1 { font-size: 22px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 17px; margin: 0; }
h3 { font-size: 13px; margin: 0 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.top {
  display: flex; flex-wrap: wrap; align-items: center; gap: 8px 24px;
  padding: 10px 20px; background: var(--panel); border-bottom: 1px solid var(--border);
}
.top .logout { margin: 0 0 0 auto; }
.brand { font-weight: 700; font-size: 17px; color: var(--accent); }
.top nav { display: flex; gap: 4px; flex-wrap: wrap; }
.top nav a { padding: 6px 10px; border-radius: 6px; color: var(--text); }
.top nav a.active { background: var(--code-bg); font-weight: 600; }
main { max-width: 1200px; margin: 0 auto; padding: 20px; display: grid; gap: 16px; }
.page-head { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 8px; }
.card { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; padding: 16px; min-width: 0; }
.card-head { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 8px; margin-bottom: 12px; }
.muted { color: var(--muted); }
.empty { color: var(--muted); margin: 0; }
.badge {
  display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
  background: var(--idle-bg); color: var(--idle); white-space: nowrap;
}
.status-completed { background: var(--ok-bg); color: var(--ok); }
.status-failed { background: var(--bad-bg); color: var(--bad); }
.status-running { background: var(--info-bg); color: var(--info); }
.status-retrying { background: var(--warn-bg); color: var(--warn); }
.status-sleeping, .status-waiting { background: var(--sleep-bg); color: var(--sleep); }
.status-paused { background: var(--warn-bg); color: var(--warn); }
.badge.stuck { background: var(--warn-bg); color: var(--warn); margin-left: 6px; }
.stuck-counts { display: flex; flex-wrap: wrap; gap: 8px 24px; }
.bulk-repair { margin-bottom: 8px; }
.actions select { max-width: 100%; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--border); vertical-align: top; white-space: nowrap; }
td.wrap { white-space: normal; overflow-wrap: anywhere; min-width: 200px; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
tbody tr:hover { background: var(--code-bg); }
pre {
  margin: 6px 0 0; padding: 10px; background: var(--code-bg); border-radius: 6px;
  overflow: auto; max-height: 420px; white-space: pre-wrap; overflow-wrap: anywhere;
}
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
button, .button {
  font: inherit; font-size: 14px; padding: 6px 12px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border); background: var(--panel); color: var(--text);
}
button:hover { border-color: var(--muted); }
button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-text); font-weight: 600; }
button.danger { color: var(--bad); border-color: var(--bad); }
button:disabled { opacity: .5; cursor: not-allowed; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
input, select, textarea {
  font: inherit; font-size: 14px; padding: 6px 8px; border-radius: 6px; max-width: 100%;
  border: 1px solid var(--border); background: var(--bg); color: var(--text);
}
textarea { font-family: var(--mono); font-size: 13px; width: 100%; min-height: 120px; resize: vertical; }
textarea.invalid { border-color: var(--bad); }
form.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-end; }
form.filters label { display: grid; gap: 2px; font-size: 12px; color: var(--muted); }
fieldset { border: 1px solid var(--border); border-radius: 6px; padding: 4px 8px; margin: 0; display: flex; flex-wrap: wrap; gap: 2px 10px; }
fieldset label { display: inline-flex !important; gap: 4px; align-items: center; color: var(--text) !important; font-size: 13px !important; }
.hint { font-size: 13px; color: var(--muted); margin: 6px 0; }
.hint.bad { color: var(--bad); }
.flash { margin: 0; font-size: 14px; min-height: 0; }
.flash:empty { display: none; }
.flash.bad { color: var(--bad); }
.flash.ok { color: var(--ok); }
.error-message { color: var(--bad); margin: 0; overflow-wrap: anywhere; white-space: pre-wrap; }
.error-cause { border-left: 2px solid var(--border); padding-left: 10px; margin-top: 6px; }
.error-cause > p { margin: 0 0 2px; font-size: 12px; }
.error-fields { margin: 4px 0 0; font-size: 12px; }
.fn-list { display: grid; gap: 16px; }
.fn-grid { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 16px; }
.fn-grid ul { margin: 0; padding: 0; list-style: none; display: grid; gap: 4px; }
.fn-grid dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 10px; margin: 0; font-size: 13px; }
.fn-grid dt { color: var(--muted); }
.fn-grid dd { margin: 0; overflow-wrap: anywhere; }
.counts { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 8px; }
.chart { width: 100%; height: 56px; display: block; }
.chart .runs { fill: var(--info); opacity: .55; }
.chart .failures { fill: var(--bad); }
.chart .axis { stroke: var(--border); stroke-width: 1; }
.chart-legend { display: flex; justify-content: space-between; font-size: 11px; color: var(--muted); }
details > summary { cursor: pointer; }
details.invoke { margin-top: 12px; }
details.invoke form { display: grid; gap: 8px; margin-top: 8px; }
.fn-foot { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; justify-content: space-between; margin-top: 12px; }
.timeline { list-style: none; margin: 0; padding: 0; display: grid; gap: 10px; }
.step { border: 1px solid var(--border); border-radius: 8px; padding: 10px 12px; }
.step-head { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center; }
.step-head .name { font-weight: 600; overflow-wrap: anywhere; }
.step-head .spacer { flex: 1; }
.step-head .kind { font-size: 12px; color: var(--muted); border: 1px solid var(--border); border-radius: 4px; padding: 0 5px; }
.track { width: 100%; height: 12px; display: block; margin: 8px 0 4px; }
.track .lane { fill: var(--code-bg); }
.track .span { fill: var(--ok); opacity: .35; }
.track .span.running, .track .span.retrying { fill: var(--warn); }
.track .span.sleeping, .track .span.waiting { fill: var(--sleep); }
.track .attempt-failed { fill: var(--bad); }
.track .attempt-ok { fill: var(--ok); }
.attempts { list-style: none; margin: 6px 0 0; padding: 0; display: grid; gap: 6px; font-size: 13px; }
.attempts li { border-left: 3px solid var(--border); padding-left: 8px; }
.attempts li.failed { border-color: var(--bad); }
.attempts li.ok { border-color: var(--ok); }
.wake { font-size: 13px; color: var(--sleep); }
.two-col { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 1fr); gap: 16px; align-items: start; }
.stack-col { display: grid; gap: 16px; min-width: 0; }
.run-chips { display: flex; flex-wrap: wrap; gap: 4px; }
.chart-box { margin: 0; }
ul.plain { list-style: none; margin: 0; padding: 0; display: grid; gap: 4px; }
.event + .event { border-top: 1px solid var(--border); margin-top: 10px; padding-top: 4px; }
.event p { margin: 0 0 4px; overflow-wrap: anywhere; }
details.filters-box > summary { font-weight: 600; margin-bottom: 8px; }
.login { max-width: 380px; margin: 12vh auto 0; display: grid; gap: 10px; }
.login form { display: grid; gap: 8px; }
.login [role=alert] { color: var(--bad); margin: 0; }
.add-app { display: grid; gap: 8px; }
.add-app input[type=url] { width: 100%; font-family: var(--mono); font-size: 13px; }
.app dl.meta { margin-bottom: 12px; }
h3.app-functions { margin-top: 4px; }
.app .card-head code { overflow-wrap: anywhere; }
.pager { display: flex; gap: 12px; justify-content: flex-end; margin-top: 10px; }
@media (max-width: 860px) {
  .fn-grid, .two-col { grid-template-columns: minmax(0, 1fr); }
}
@media (max-width: 600px) {
  main { padding: 12px; gap: 12px; }
  .top { padding: 8px 12px; gap: 4px 12px; }
  .card { padding: 12px; }
  dl.meta { grid-template-columns: minmax(0, 1fr); }
  dl.meta dt { margin-top: 6px; }
  form.filters > * { flex: 1 1 140px; }
  form.filters > fieldset { flex-basis: 100%; }
  /* Tables of runs and events stack: each row wraps its cells onto lines instead of scrolling. */
  table.runs thead, table.events thead { display: none; }
  table.runs, table.runs tbody, table.events, table.events tbody { display: block; }
  table.runs tr, table.events tr { display: flex; flex-wrap: wrap; align-items: baseline; gap: 2px 12px; padding: 8px 2px; border-bottom: 1px solid var(--border); }
  table.runs td, table.events td { border: 0; padding: 0; }
  table.events td.wrap { flex-basis: 100%; min-width: 0; }
}
`;
