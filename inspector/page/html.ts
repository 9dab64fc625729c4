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
  :root { --bg: #f7f7f5; --card: #fff; --ink: #1d2329; --muted: #6b7480; --line: #c9ced4; --active: #2563eb; --active-bg: #dbe8ff; --bad: #c2410c; --ok: #15803d; --warn: #b45309; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: var(--ink); background: var(--bg); }
  body > header { display: flex; gap: 16px; align-items: baseline; padding: 10px 16px; background: #1d2329; color: #fff; flex-wrap: wrap; }
  body > header h1 { font-size: 16px; margin: 0; }
  #mode { color: #9fb3c8; }
  #cluster { display: flex; gap: 14px; flex-wrap: wrap; align-items: baseline; }
  #timebar { position: sticky; top: 0; z-index: 2; display: flex; gap: 8px; align-items: center; padding: 8px 16px; background: #e9ebee; border-bottom: 1px solid var(--line); }
  #timebar .track { position: relative; flex: 1; }
  #scrub { width: 100%; }
  #marks { position: absolute; left: 0; right: 0; top: -6px; height: 6px; pointer-events: none; }
  #marks i { position: absolute; width: 3px; height: 8px; background: var(--bad); }
  #live.on { background: var(--active); color: #fff; }
  #when { min-width: 280px; font-variant-numeric: tabular-nums; color: var(--muted); }
  main { display: flex; gap: 12px; padding: 12px 16px; align-items: flex-start; }
  #overview { flex: 1; min-width: 0; }
  h2 { font-size: 14px; margin: 6px 0; }
  h2 .count { color: var(--muted); font-weight: 400; margin-left: 4px; }
  [data-state-id][data-active="true"] { cursor: inherit; }
  .states { font-family: ui-monospace, monospace; font-size: 11px; color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  .tile .states { display: flex; justify-content: flex-end; min-width: 0; flex: 1; }
  .tile .states span { flex: none; }
  .states span + span::before { content: " › "; color: #a3aab3; }
  .states span.leaf { color: var(--active); font-weight: 600; }
  #nodes { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 6px; margin-bottom: 14px; max-height: 46vh; overflow: auto; }
  .tile { contain: content; background: var(--card); border: 1px solid var(--line); border-left: 4px solid var(--line); border-radius: 6px; padding: 4px 6px; cursor: pointer; min-width: 0; }
  .tile[data-health="ok"] { border-left-color: var(--ok); }
  .tile[data-health="warn"] { border-left-color: var(--warn); }
  .tile[data-health="bad"] { border-left-color: var(--bad); }
  .tile.gone { opacity: .5; }
  .tile .top { display: flex; gap: 6px; align-items: baseline; min-width: 0; }
  .badge { font-size: 10px; padding: 0 5px; border-radius: 8px; background: #e5e7eb; }
  .badge.leader { background: var(--active); color: #fff; }
  .tile .load { display: flex; gap: 6px; align-items: center; font-size: 11px; }
  .bar { flex: 1; height: 6px; background: #eceef1; border-radius: 3px; overflow: hidden; }
  .bar i { display: block; height: 100%; background: var(--active); }
  .tile .meta { font-size: 10px; color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  .tile .sub { display: flex; gap: 6px; font-size: 11px; min-width: 0; }
  .tile .sub .who { color: var(--muted); flex: none; }
  .selected { outline: 2px solid var(--active); }
  .violating { box-shadow: 0 0 0 2px #fed7aa; border-color: var(--bad) !important; }
  #toolbar { display: flex; gap: 6px; flex-wrap: wrap; align-items: center; margin-bottom: 6px; }
  #toolbar input[type=search] { width: 220px; }
  #toolbar input[type=number] { width: 54px; }
  #actions-why { color: var(--muted); font-size: 11px; }
  #jobs { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); table-layout: fixed; }
  #jobs th { text-align: left; font-weight: 600; font-size: 11px; color: var(--muted); padding: 4px 6px; border-bottom: 1px solid var(--line); }
  #jobs td { padding: 3px 6px; border-bottom: 1px solid #eee; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  #jobs tr.job { cursor: pointer; }
  #jobs tr.job:hover { background: #f0f4ff; }
  #jobs td.num { text-align: right; font-variant-numeric: tabular-nums; }
  #jobs td.why { color: var(--bad); font-size: 11px; }
  #jobs button.act { font-size: 11px; padding: 0 6px; }
  #pager { display: flex; gap: 8px; align-items: center; margin-top: 6px; color: var(--muted); }
  aside { contain: content; width: 40%; max-width: 760px; flex: none; position: sticky; top: 52px; max-height: calc(100vh - 70px); overflow: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; }
  aside h2 { word-break: break-all; }
  aside h3 { font-size: 12px; margin: 10px 0 4px; color: var(--muted); text-transform: uppercase; }
  #state { font-family: ui-monospace, monospace; color: var(--active); }
  #chart { margin-top: 6px; border: 1px solid #eee; border-radius: 6px; }
  #chart svg { width: 100%; height: auto; display: block; }
  #detail-head { display: flex; gap: 8px; align-items: baseline; justify-content: space-between; }
  #detail.big { position: fixed; inset: 24px 32px; width: auto; max-width: none; max-height: none; z-index: 4; box-shadow: 0 8px 40px rgba(0,0,0,.35); }
  #detail.big #chart svg { max-height: 72vh; }
  svg .edge { fill: none; stroke: #8d96a0; stroke-width: 1.2; }
  svg .edge-label { font-size: 10px; fill: var(--muted); }
  svg [data-state-id] > rect { fill: #fff; stroke: #8d96a0; stroke-width: 1.2; }
  svg [data-state-id].compound > rect { fill: #f3f4f6; }
  svg [data-state-id] > text { font-size: 12px; fill: var(--ink); }
  svg [data-state-id][data-active="true"] > rect { fill: var(--active-bg); stroke: var(--active); stroke-width: 2.5; }
  svg [data-state-id][data-active="true"].compound > rect { fill: #eef4ff; }
  aside table { width: 100%; border-collapse: collapse; font-size: 11px; }
  aside td { padding: 2px 4px; border-bottom: 1px solid #eee; vertical-align: top; }
  aside tr.event { cursor: pointer; }
  aside tr.event:hover { background: #f0f4ff; }
  aside tr.at { background: var(--active-bg); }
  pre { font-size: 11px; white-space: pre-wrap; word-break: break-all; margin: 0; }
  .violation { color: var(--bad); cursor: pointer; margin: 4px 0; }
  .muted { color: var(--muted); }
  #toast { position: fixed; bottom: 16px; left: 50%; transform: translateX(-50%); background: #1d2329; color: #fff; padding: 6px 12px; border-radius: 6px; cursor: pointer; z-index: 3; }
  #toast.bad { background: var(--bad); }
</style>
</head>
<body>
<script>
  // Join the stream at once, while the page script loads; it takes over what arrived meanwhile.
  window.shoalStream = { source: new EventSource('/api/stream'), early: [] };
  window.shoalStream.source.onmessage = (e) => window.shoalStream.early.push(e.data);
</script>
<header><h1>Shoal inspector</h1><span id="mode"></span><div id="cluster"></div><button id="stately" hidden title="open stately.ai/inspect in a new window and relay the nodes' machines to it (needs internet)">Open in Stately's inspector</button></header>
<div id="timebar">
  <button id="prev" title="previous event (←)">◀</button>
  <div class="track"><div id="marks"></div><input type="range" id="scrub" min="0" max="0" value="0" aria-label="timeline"></div>
  <button id="next" title="next event (→)">▶</button>
  <button id="live" class="on" title="follow the newest event">Live</button>
  <span id="when"></span>
</div>
<main>
  <div id="overview">
    <h2>Nodes<span class="count" id="nodes-count">0</span></h2>
    <div id="nodes" aria-label="nodes"></div>
    <h2>Jobs<span class="count" id="jobs-count">0</span></h2>
    <div id="toolbar">
      <input type="search" id="q" placeholder="search id or type" aria-label="search jobs">
      <label>state <select id="f-state"></select></label>
      <label>type <select id="f-type"></select></label>
      <label>node <select id="f-node"></select></label>
      <label>priority ≥ <input type="number" id="f-priority" min="0" max="9" value="0"></label>
      <label>submitted <select id="f-since"><option value="">any time</option><option value="60000">last minute</option><option value="300000">last 5 min</option><option value="900000">last 15 min</option><option value="3600000">last hour</option></select></label>
      <label>newest by <select id="f-sort"></select></label>
      <span id="actions-why"></span>
    </div>
    <table id="jobs">
      <colgroup><col style="width:20%"><col style="width:10%"><col style="width:16%"><col style="width:8%"><col style="width:5%"><col style="width:5%"><col style="width:6%"><col style="width:7%"><col><col style="width:110px"></colgroup>
      <thead><tr><th>job</th><th>type</th><th>state</th><th>node</th><th>prio</th><th>att.</th><th>progress</th><th>age</th><th>error / waiting for</th><th></th></tr></thead>
      <tbody id="jobs-body"></tbody>
    </table>
    <div id="pager"><button id="page-prev">◀</button><span id="page-info"></span><button id="page-next">▶</button></div>
  </div>
  <aside id="detail">
    <div id="detail-head"><h2 id="selected">Select a node, a lease or a job</h2><button id="enlarge" title="draw the chart over the page (Esc closes)">⤢ enlarge</button></div>
    <div id="state" class="muted"></div>
    <div id="detail-actions"><button data-action="cancel" hidden>cancel</button> <button data-action="retry" hidden>retry</button></div>
    <div id="chart"></div>
    <div id="violations"></div>
    <h3>Events (click one to travel there)</h3>
    <table id="events"></table>
    <h3>Context</h3>
    <pre id="context" class="muted">–</pre>
  </aside>
</main>
<div id="toast" hidden></div>
<script type="module" src="/app.js"></script>
</body>
</html>
`;
