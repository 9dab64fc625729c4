// The inspector page, built for a cluster an operator keeps open: the nodes as
// a compact grid (each with its coordinator and leases), the jobs as a table
// with search, filters and actions, and one selected actor's statechart drawn
// full size with its events and context. The timeline at the top travels the
// whole page back to any event. DOM contract: every actor shown has
// `data-actor-id` and `data-actor-kind`, and its current state as
// `[data-state-id][data-active="true"]` elements (compact in the grid and the
// table; the selected actor's full chart in #detail marks every state).
import type { ShoalInspectionEvent } from '../../node/inspection.ts';
import type { Transition } from '../../nats/events.ts';
import type { StateValue } from 'xstate';
import { inspectorDefaults } from '../defaults.ts';
import { isTerminalState, type JobRow, JobRows } from '../jobs.ts';
import { isStateChange, type Kind, kinds, type ServerMessage, type StatusView, Timeline, type ViolationMark } from '../model.ts';
import { chartTemplate, markActive } from './chart.ts';
import { $, byName, clock, el } from './dom.ts';
import { renderJobs, setupJobsTable } from './jobs.table.ts';
import { type ActorAt, renderCluster, renderNodes } from './nodes.ts';
import { rowsFromTimeline } from './derive.ts';
import { stateString } from '../../machines/state.value.ts';
import { statelyRelay } from './stately.ts';

const timeline = new Timeline();
const rows = new JobRows(inspectorDefaults.jobsMax);
let templates = new Map<Kind, SVGSVGElement>();
/** From the URL shoal inspect printed: cancel and retry send it back (a page opened without it only looks). */
const token = new URLSearchParams(location.search).get('token') ?? '';
let actions = { enabled: false, why: 'waiting for the inspector' };
let cursor = -1;
/** The event the cursor stands on while travelling back. */
let atEvent: Transition | null = null;
let live = true;
let selected: string | null = null;
let violations: ViolationMark[] = [];
let status: StatusView | null = null;
/** Latest state path and recent XState events of machine actors, from the nodes' inspection feed (contexts are fetched for the selected one). */
const livePaths = new Map<string, { path: string; node: string; kind: Kind; actor: string }>();
const xstateEvents = new Map<string, Array<{ at: number; type: string }>>();
let stately: ReturnType<typeof statelyRelay> | null = null;
let replay = false;
/** 'none' until the present is drawn, then the history is fetched. */
let history: 'none' | 'loading' | 'loaded' = 'none';

/** Read the history a line (a batch of transitions) at a time, yielding between lines: no long task however long it is. */
async function loadHistory(): Promise<void> {
  history = 'loading';
  try {
    const r = await fetch('/api/history');
    if (!r.ok || !r.body) throw new Error(`history: ${r.status}`);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      rest += value ?? '';
      const lines = rest.split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        if (!line) continue;
        timeline.add(JSON.parse(line) as Transition[]);
        schedule();
        await new Promise((resolve) => setTimeout(resolve));
      }
      if (done) break;
    }
  } catch (err) {
    toast(`could not read the history (${(err as Error).message}); it is read again on the next reconnect`, true);
  } finally {
    history = 'loaded';
  }
  if (violations.length) renderMarks();
  schedule(true);
}

function select(key: string): void {
  selected = key;
  detailShown = '';
  contextShownAt = -Infinity;
  if (contextTimer !== null) clearTimeout(contextTimer);
  contextTimer = null;
  refreshContext();
  schedule(true);
}

let contextAsked = 0;
let contextTimer: ReturnType<typeof setTimeout> | null = null;
/** Show the selected actor's context: at most once a second, and only the answer to the newest question. */
function refreshContext(): void {
  if (contextTimer !== null) return;
  contextTimer = setTimeout(() => {
    contextTimer = null;
    void showContext();
  }, Math.max(0, contextShownAt + 1_000 - performance.now()));
}
let contextShownAt = -Infinity;

async function showContext(): Promise<void> {
  const key = selected;
  if (!key) return;
  const asked = ++contextAsked;
  contextShownAt = performance.now();
  const url = key.startsWith('job:') ? `/api/job?id=${encodeURIComponent(key.slice(4))}` : `/api/context?actor=${encodeURIComponent(key)}`;
  const value = await fetch(url).then((r) => (r.ok ? r.json() : null)).catch(() => null);
  if (asked !== contextAsked || key !== selected) return; // a newer question was asked
  $('context').textContent = value !== null
    ? JSON.stringify(value, null, 2)
    : key.startsWith('job:')
    ? '(no record)'
    : '(no live snapshot yet: the nodes send them while this page is open)';
}

async function act(action: 'cancel' | 'retry', id: string): Promise<void> {
  const r = await fetch(`/api/jobs/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-shoal-token': token },
    body: JSON.stringify({ id }),
  });
  const body = await r.json().catch(() => ({})) as { error?: string | { message?: string }; id?: string };
  const error = typeof body.error === 'string' ? body.error : body.error?.message;
  toast(
    r.ok ? (action === 'retry' ? `retrying ${id} as ${body.id}` : `cancel sent for ${id}`) : `${action} ${id}: ${error ?? r.status}`,
    !r.ok,
  );
}

function toast(text: string, bad = false): void {
  const t = $('toast');
  t.textContent = text;
  t.className = bad ? 'bad' : '';
  t.hidden = false;
}

/** The state of the selected actor at the cursor, drawn full size, with its events. */
let detailShown = '';
function renderDetail(cursorWall: number): void {
  const box = $('detail');
  if (!selected) return;
  const kind = selected.slice(0, selected.indexOf(':')) as Kind;
  const a = timeline.actor(selected);
  const step = a ? timeline.stateAt(a, cursor) : null;
  // Live, a job's record is the authority (as in the table); back in time, the timeline.
  const record = live && kind === 'job' ? rows.get(selected.slice(4))?.state : undefined;
  const path = record ?? step?.to ?? (live ? livePaths.get(selected)?.path : undefined) ?? '';
  if (box.getAttribute('data-selected') !== selected) {
    box.setAttribute('data-selected', selected);
    box.setAttribute('data-kind', kind);
    $('chart').replaceChildren(templates.get(kind)?.cloneNode(true) ?? el('span', {}, '(no chart)'));
    $('selected').textContent = selected;
  }
  if (detailShown !== `${path}|${cursor}|${actions.enabled}`) {
    detailShown = `${path}|${cursor}|${actions.enabled}`;
    $('state').textContent = path || '(not yet)';
    const [cancel, retry] = document.querySelectorAll<HTMLButtonElement>('#detail-actions button');
    cancel!.hidden = !(live && kind === 'job' && path && !isTerminalState(path));
    retry!.hidden = !(live && kind === 'job' && /^(failed|cancelled)/.test(path));
    for (const b of [cancel!, retry!]) {
      b.disabled = !actions.enabled;
      b.title = actions.enabled ? '' : actions.why;
    }
    const chart = $('chart').firstElementChild;
    if (chart) markActive(chart, kind, path);
    renderEvents(cursorWall);
  }
}

function renderEvents(cursorWall: number): void {
  const a = selected ? timeline.actor(selected) : undefined;
  const table = $('events');
  table.replaceChildren();
  const steps = (a?.steps ?? []).filter((i) => i <= cursor).slice(-40).reverse();
  for (const i of steps) {
    const t = timeline.event(i)!;
    const row = el('tr', { class: `event${i === cursor ? ' at' : ''}`, 'data-event-index': String(i) });
    row.append(el('td', {}, clock(t.wall).slice(11)), el('td', {}, `${t.from ?? '∅'} → ${t.to}`), el('td', {}, `${t.event} (${t.node})`));
    row.addEventListener('click', () => goTo(i));
    table.append(row);
  }
  for (const e of (xstateEvents.get(selected ?? '') ?? []).filter((x) => x.at <= cursorWall).slice(-10).reverse()) {
    const row = el('tr', { class: 'muted' });
    row.append(el('td', {}, clock(e.at).slice(11)), el('td', { colspan: '2' }, `xstate event ${e.type}`));
    table.append(row);
  }
}

function renderMarks(): void {
  const marks = $('marks');
  marks.replaceChildren();
  const list = $('violations');
  list.replaceChildren();
  if (violations.length) list.append(el('h3', {}, `Checker findings (${violations.length})`));
  for (const v of violations) {
    const i = v.at === null ? timeline.length - 1 : timeline.indexAt(v.at);
    const m = el('i', { title: v.message });
    m.style.left = `${(100 * i) / Math.max(1, timeline.length - 1)}%`;
    marks.append(m);
    const row = el('div', { class: 'violation', 'data-invariant': v.invariant }, `✗ [${v.invariant}] ${v.message}`);
    row.addEventListener('click', () => {
      goTo(i);
      if (v.actors[0]) select(v.actors[0]);
    });
    list.append(row);
  }
}

let pending: ReturnType<typeof setTimeout> | null = null;
let renderedAt = 0;
let tableAt = 0;
let forceTable = true;
/**
 * Draw soon: at once for a person's action (`now`: a click, a filter), else at most ten times a second
 * however fast events stream in (each draw costs the browser a layout); the table at most four times.
 */
function schedule(now = false): void {
  forceTable ||= now;
  if (pending !== null && !now) return;
  if (pending !== null) clearTimeout(pending);
  pending = setTimeout(() => requestAnimationFrame(render), now ? 0 : Math.max(0, renderedAt + 100 - performance.now()));
}

/** Set a text or property only when it changes: an unchanged page needs no layout. */
const put = (e: HTMLElement, text: string) => e.textContent !== text && (e.textContent = text);

function render(): void {
  pending = null;
  renderedAt = performance.now();
  const last = timeline.length - 1;
  // Back in time, the moment shown is an event, not an index: late arrivals before it move its index.
  if (!live && atEvent) cursor = Math.max(0, timeline.indexOf(atEvent));
  if (live || cursor > last || cursor < 0) cursor = last;
  const scrub = $<HTMLInputElement>('scrub');
  if (scrub.max !== String(Math.max(0, last))) scrub.max = String(Math.max(0, last));
  if (scrub.value !== String(Math.max(0, cursor))) scrub.value = String(Math.max(0, cursor));
  const at = timeline.event(cursor);
  const wall = live || !at ? Date.now() : at.wall;
  put($('when'), at ? `${clock(at.wall)} · event ${cursor + 1} of ${timeline.length}${live ? ' · live' : ''}` : 'no events yet');
  $('live').classList.toggle('on', live);
  const flagged = new Set(violations.flatMap((v) => v.actors));

  const machines: ActorAt[] = [];
  const seen = new Set<string>();
  for (const a of timeline.machineActors()) {
    const step = timeline.stateAt(a, cursor);
    const path = step?.to ?? (live ? livePaths.get(a.key)?.path : undefined);
    if (path === undefined) continue;
    seen.add(a.key);
    machines.push({ a, path, wall: step?.wall ?? wall });
  }
  if (live) {
    for (const [key, x] of livePaths) if (!seen.has(key) && x.path) machines.push({ a: { key, ...x }, path: x.path, wall });
  }
  const nodeCount = renderNodes($('nodes'), { actors: machines, status, live, selected, flagged, select });
  put($('nodes-count'), String(nodeCount));

  const since = performance.now() - tableAt;
  if (forceTable || since >= 250) {
    forceTable = false;
    tableAt = performance.now();
    const all = replay ? [...rows.values(), ...rowsFromTimeline(timeline, rows)] : [...rows.values()];
    // Live, the record is the authority (a handler may still report checkpoints after its job was cancelled);
    // back in time, the timeline.
    const stateAt = (row: JobRow): string | null => {
      if (live) return row.state;
      const a = timeline.actor(`job:${row.id}`);
      const step = a ? timeline.stateAt(a, cursor) : null;
      if (step) return step.to;
      return a || row.createdAt > wall ? null : row.state;
    };
    const nodes = [...new Set([...(status?.nodes.map((x) => x.id) ?? []), ...all.flatMap((r) => r.owner ?? [])])]
      .sort(byName);
    const matched = renderJobs({
      rows: all,
      now: wall,
      stateAt,
      live,
      selected,
      flagged,
      nodes,
      actions,
      select,
      act: (x, id) => void act(x, id),
    });
    put($('jobs-count'), matched.toLocaleString('en'));
    // The present drawn: what `performance.getEntriesByName('shoal:first-paint')` reports (the browser tests read it).
    if (history !== 'none' && performance.getEntriesByName('shoal:first-paint').length === 0) performance.mark('shoal:first-paint');
  } else schedule();
  if (at) renderDetail(at.wall);
}

function goTo(i: number): void {
  live = false;
  cursor = Math.max(0, Math.min(timeline.length - 1, i));
  atEvent = timeline.event(cursor) ?? null;
  schedule(true);
}

function onInspection(items: ShoalInspectionEvent[]): void {
  stately?.feed(items);
  let changed = false;
  for (const e of items) {
    const key = `${e.shoal.kind}:${e.shoal.actor}`;
    if ('snapshot' in e && e.snapshot) {
      const snap = e.snapshot as { value: StateValue };
      if (key === selected) changed = true;
      livePaths.set(key, { path: stateString(snap.value), node: e.shoal.node, kind: e.shoal.kind as Kind, actor: e.shoal.actor });
    }
    if (e.type === '@xstate.event') {
      const list = xstateEvents.get(key) ?? [];
      list.push({ at: Number(e.createdAt), type: (e.event as { type: string }).type });
      if (list.length > 50) list.shift();
      xstateEvents.set(key, list);
    }
  }
  if (changed && !selected!.startsWith('job:')) refreshContext();
}

function onMessage(m: ServerMessage): void {
  switch (m.type) {
    case 'hello':
      // A (re)join: the server sends the present whole; what was removed while away must not linger.
      rows.clear();
      livePaths.clear();
      templates = new Map(kinds.map((k) => [k, chartTemplate(k, m.charts[k])]));
      violations = m.violations;
      live = m.mode === 'live';
      replay = m.mode === 'replay';
      $('mode').textContent = m.mode === 'live' ? `live · ${m.source}` : `replay · ${m.source}`;
      if (m.stately && !stately) stately = statelyRelay($<HTMLButtonElement>('stately'));
      break;
    case 'transitions':
      if (
        timeline.add(m.items as Transition[]) > 0 && selected?.startsWith('job:') &&
        m.items.some((t) => `job:${t.actor}` === selected && isStateChange(t))
      ) refreshContext();
      if (violations.length) renderMarks();
      break;
    case 'jobs':
      for (const r of m.rows) rows.put(r);
      for (const id of m.removed) rows.remove(id);
      if (history === 'none') forceTable = true; // the first rows draw at once
      break;
    case 'synced':
      // The present is here: draw it, then fetch the history (again after a reconnect: what was missed).
      schedule(true);
      if (history !== 'loading') requestAnimationFrame(() => setTimeout(() => void loadHistory()));
      history = history === 'none' ? 'loading' : history;
      break;
    case 'actions':
      actions = token || !m.enabled
        ? { enabled: m.enabled, why: m.why }
        : { enabled: false, why: 'open the URL shoal inspect printed (it carries the token) to cancel and retry' };
      schedule(true);
      break;
    case 'inspection':
      onInspection(m.items);
      break;
    case 'status':
      status = m.status;
      renderCluster($('cluster'), status);
      break;
  }
  schedule();
}

$('scrub').addEventListener('input', (e) => goTo(Number((e.target as HTMLInputElement).value)));
$('prev').addEventListener('click', () => goTo(cursor - 1));
$('next').addEventListener('click', () => goTo(cursor + 1));
$('live').addEventListener('click', () => {
  live = true;
  schedule(true);
});
$('toast').addEventListener('click', () => ($('toast').hidden = true));
const enlarge = (on: boolean) => {
  $('detail').classList.toggle('big', on);
  $('enlarge').textContent = on ? '✕ close' : '⤢ enlarge';
};
$('enlarge').addEventListener('click', () => enlarge(!$('detail').classList.contains('big')));
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') enlarge(false);
  if ((e.target as HTMLElement).closest('input, select')) return;
  if (e.key === 'ArrowLeft') goTo(cursor - 1);
  if (e.key === 'ArrowRight') goTo(cursor + 1);
});
for (const b of document.querySelectorAll<HTMLButtonElement>('#detail-actions button')) {
  b.addEventListener('click', () => selected?.startsWith('job:') && void act(b.dataset.action as 'cancel' | 'retry', selected.slice(4)));
}
setupJobsTable(() => schedule(true));
// The stream the page's first script opened (html.ts): what came before this script ran, then the rest.
const stream = (window as unknown as { shoalStream?: { source: EventSource; early: string[] } }).shoalStream ??
  { source: new EventSource('/api/stream'), early: [] };
for (const data of stream.early.splice(0)) onMessage(JSON.parse(data) as ServerMessage);
stream.source.onmessage = (e) => onMessage(JSON.parse(e.data) as ServerMessage);
