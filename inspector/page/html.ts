// The inspector page's shell and style; its script is app.ts, bundled by the
// server. Nothing is fetched from any other host.
export const pageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal inspector</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg: #f7f7f5; --card: #fff; --ink: #1d2329; --muted: #6b7480; --line: #c9ced4; --active: #2563eb; --active-bg: #dbe8ff; --bad: #c2410c; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: var(--ink); background: var(--bg); }
  header { display: flex; gap: 16px; align-items: baseline; padding: 10px 16px; background: #1d2329; color: #fff; flex-wrap: wrap; }
  header h1 { font-size: 16px; margin: 0; }
  header #mode { color: #9fb3c8; }
  #cluster { display: flex; gap: 14px; flex-wrap: wrap; align-items: baseline; }
  #cluster .nodes span { margin-right: 10px; }
  #timebar { position: sticky; top: 0; z-index: 2; display: flex; gap: 8px; align-items: center; padding: 8px 16px; background: #e9ebee; border-bottom: 1px solid var(--line); }
  #timebar .track { position: relative; flex: 1; }
  #scrub { width: 100%; }
  #marks { position: absolute; left: 0; right: 0; top: -6px; height: 6px; pointer-events: none; }
  #marks i { position: absolute; width: 3px; height: 8px; background: var(--bad); }
  #live.on { background: var(--active); color: #fff; }
  #when { min-width: 280px; font-variant-numeric: tabular-nums; color: var(--muted); }
  main { display: flex; gap: 12px; padding: 12px 16px; align-items: flex-start; }
  #charts { flex: 1; min-width: 0; }
  .kind h2 { font-size: 14px; margin: 10px 0 6px; text-transform: capitalize; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 10px; }
  .kind[data-kind="job"] .grid { grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); }
  .actor { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 6px 8px; cursor: pointer; }
  .actor.selected { outline: 2px solid var(--active); }
  .actor.violating { border-color: var(--bad); box-shadow: 0 0 0 2px #fed7aa; }
  .actor.gone { opacity: .5; }
  .actor header { all: unset; display: flex; justify-content: space-between; gap: 8px; font-weight: 600; }
  .actor header .state { font-weight: 400; color: var(--active); font-family: ui-monospace, monospace; font-size: 11px; }
  .actor svg { width: 100%; height: auto; display: block; margin-top: 4px; }
  svg .edge { fill: none; stroke: #8d96a0; stroke-width: 1.2; }
  svg .edge-label { font-size: 10px; fill: var(--muted); }
  svg [data-state-id] > rect { fill: #fff; stroke: #8d96a0; stroke-width: 1.2; }
  svg [data-state-id].compound > rect { fill: #f3f4f6; }
  svg [data-state-id] > text { font-size: 12px; fill: var(--ink); }
  svg [data-state-id][data-active="true"] > rect { fill: var(--active-bg); stroke: var(--active); stroke-width: 2.5; }
  svg [data-state-id][data-active="true"].compound > rect { fill: #eef4ff; }
  aside { width: 360px; flex: none; position: sticky; top: 52px; max-height: calc(100vh - 70px); overflow: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; }
  aside h2 { font-size: 14px; margin: 4px 0; word-break: break-all; }
  aside h3 { font-size: 12px; margin: 10px 0 4px; color: var(--muted); text-transform: uppercase; }
  aside table { width: 100%; border-collapse: collapse; font-size: 11px; }
  aside td { padding: 2px 4px; border-bottom: 1px solid #eee; vertical-align: top; }
  aside tr.event { cursor: pointer; }
  aside tr.event:hover { background: #f0f4ff; }
  aside tr.at { background: var(--active-bg); }
  pre { font-size: 11px; white-space: pre-wrap; word-break: break-all; margin: 0; }
  .violation { color: var(--bad); cursor: pointer; margin: 4px 0; }
  .muted { color: var(--muted); }
</style>
</head>
<body>
<header><h1>Shoal inspector</h1><span id="mode"></span><div id="cluster"></div><button id="stately" hidden title="open stately.ai/inspect in a new window and relay the nodes' machines to it (needs internet)">Open in Stately's inspector</button></header>
<div id="timebar">
  <button id="prev" title="previous event">◀</button>
  <div class="track"><div id="marks"></div><input type="range" id="scrub" min="0" max="0" value="0" aria-label="timeline"></div>
  <button id="next" title="next event">▶</button>
  <button id="live" class="on" title="follow the newest event">Live</button>
  <span id="when"></span>
</div>
<main>
  <div id="charts"></div>
  <aside>
    <h2 id="selected">Select an actor</h2>
    <div id="violations"></div>
    <h3>Events (click one to travel there)</h3>
    <table id="events"></table>
    <h3>Context</h3>
    <pre id="context" class="muted">–</pre>
  </aside>
</main>
<script type="module" src="/app.js"></script>
</body>
</html>
`;
