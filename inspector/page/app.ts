// The inspector page: every actor as its statechart (the layout comes from
// the server), the active states marked, a timeline to travel back to any
// event, the selected actor's events and context. DOM contract: each actor's
// container has `data-actor-id` and `data-actor-kind`; each drawn state has
// `data-state-id` (the XState state id) and `data-active` ("true"/"false").
import type { ShoalInspectionEvent } from '../../node/inspection.ts';
import type { Transition } from '../../nats/events.ts';
import type { ChartLayout } from '../layout.ts';
import {
  activeStateIds,
  type ActorTimeline,
  isStateChange,
  isTerminalState,
  type Kind,
  kinds,
  type ServerMessage,
  type StatusView,
  Timeline,
  type ViolationMark,
} from '../model.ts';
import { statelyRelay } from './stately.ts';

const svgNS = 'http://www.w3.org/2000/svg';
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const svg = (tag: string, attrs: Record<string, string | number>) => {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
};
const clock = (wall: number) => new Date(wall).toISOString().replace('T', ' ').slice(0, 23);

const timeline = new Timeline();
let charts: Record<Kind, ChartLayout> | null = null;
let templates = new Map<Kind, SVGSVGElement>();
let keepFinishedMs = 5 * 60_000;
let cursor = -1;
let live = true;
let selected: string | null = null;
let violations: ViolationMark[] = [];
let status: StatusView | null = null;
/** Latest context and recent XState events of machine actors, from the nodes' inspection feed. */
const contexts = new Map<string, unknown>();
const xstateEvents = new Map<string, Array<{ at: number; type: string }>>();
let stately: ReturnType<typeof statelyRelay> | null = null;
const cards = new Map<string, { root: HTMLElement; states: Map<string, Element>; label: HTMLElement; shown: string }>();

/** One SVG per machine, cloned for each of its actors. */
function template(kind: Kind, layout: ChartLayout): SVGSVGElement {
  const s = svg('svg', {
    viewBox: `0 0 ${Math.ceil(layout.width)} ${Math.ceil(layout.height)}`,
    role: 'img',
    'aria-label': `${kind} statechart`,
  }) as SVGSVGElement;
  const defs = svg('defs', {});
  const marker = svg('marker', {
    id: `arrow-${kind}`,
    viewBox: '0 0 10 10',
    refX: 9,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: 'auto-start-reverse',
  });
  marker.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#8d96a0' }));
  defs.append(marker);
  s.append(defs);
  // Outer states first, so inner ones are drawn on top.
  for (const b of [...layout.states].sort((a, b) => a.id.split('.').length - b.id.split('.').length)) {
    const g = svg('g', { 'data-state-id': b.id, 'data-active': 'false', class: b.compound ? 'compound' : 'leaf' });
    g.append(svg('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: 7, ...(b.final ? { 'stroke-dasharray': '4 2' } : {}) }));
    const t = svg('text', b.compound ? { x: b.x + 8, y: b.y + 16 } : { x: b.x + b.w / 2, y: b.y + b.h / 2 + 4, 'text-anchor': 'middle' });
    t.textContent = b.key;
    g.append(t);
    s.append(g);
  }
  for (const e of layout.edges) {
    s.append(svg('polyline', { class: 'edge', points: e.points.map((p) => p.join(',')).join(' '), 'marker-end': `url(#arrow-${kind})` }));
    if (e.labelAt) {
      const t = svg('text', { class: 'edge-label', x: e.labelAt[0], y: e.labelAt[1] });
      t.textContent = e.label;
      s.append(t);
    }
  }
  return s;
}

function section(kind: Kind): HTMLElement {
  let s = document.querySelector<HTMLElement>(`.kind[data-kind="${kind}"]`);
  if (!s) {
    s = el('section', { class: 'kind', 'data-kind': kind });
    s.append(el('h2', {}, kind === 'coordinator' ? 'coordinators' : `${kind}s`), el('div', { class: 'grid' }));
    $('charts').append(s);
  }
  return s.querySelector('.grid') as HTMLElement;
}

function card(a: ActorTimeline) {
  let c = cards.get(a.key);
  if (c) return c;
  const root = el('div', { class: 'actor', 'data-actor-id': a.key, 'data-actor-kind': a.kind });
  const label = el('span', { class: 'state' });
  const head = el('header');
  head.append(el('span', {}, a.kind === 'job' ? a.actor : a.kind === 'lease' ? `lease ${a.actor}` : `${a.kind} ${a.actor}`), label);
  const chart = templates.get(a.kind)!.cloneNode(true) as SVGSVGElement;
  root.append(head, chart);
  root.addEventListener('click', () => select(a.key));
  const states = new Map<string, Element>();
  chart.querySelectorAll('[data-state-id]').forEach((g) => states.set(g.getAttribute('data-state-id')!, g));
  c = { root, states, label, shown: '' };
  cards.set(a.key, c);
  // Kinds in order; actors sorted within their kind.
  kinds.forEach(section);
  const grid = section(a.kind);
  const after = [...grid.children].find((x) => (x.getAttribute('data-actor-id') ?? '') > a.key);
  grid.insertBefore(root, after ?? null);
  return c;
}

function select(key: string): void {
  selected = key;
  cards.forEach((c, k) => c.root.classList.toggle('selected', k === key));
  void refreshContext();
  schedule();
}

async function refreshContext(): Promise<void> {
  const key = selected;
  if (!key) return;
  if (key.startsWith('job:')) {
    const r = await fetch(`/api/job?id=${encodeURIComponent(key.slice(4))}`);
    const record = r.ok ? await r.json() : null;
    if (key === selected) $('context').textContent = record ? JSON.stringify(record, null, 2) : '(no record)';
  } else {
    $('context').textContent = contexts.has(key)
      ? JSON.stringify(contexts.get(key), null, 2)
      : '(no live snapshot yet: the nodes send them while this page is open)';
  }
}

function renderSide(cursorWall: number): void {
  if (!selected) return;
  $('selected').textContent = selected;
  const a = timeline.actor(selected);
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
  for (const e of (xstateEvents.get(selected) ?? []).filter((x) => x.at <= cursorWall).slice(-10).reverse()) {
    const row = el('tr', { class: 'muted' });
    row.append(el('td', {}, clock(e.at).slice(11)), el('td', { colspan: '2' }, `xstate event ${e.type}`));
    table.append(row);
  }
}

function renderStatus(): void {
  const box = $('cluster');
  box.replaceChildren();
  if (!status) return;
  box.append(el('span', {}, status.leader ? `leader ${status.leader.nodeId} (epoch ${status.leader.epoch})` : 'no leader'));
  const nodes = el('span', { class: 'nodes' });
  for (const n of status.nodes) nodes.append(el('span', {}, `${n.id}: ${n.state}, ${n.runtime}, ${n.running}/${n.slots}`));
  box.append(nodes);
  if (status.jobs) box.append(el('span', {}, Object.entries(status.jobs).map(([k, v]) => `${k} ${v}`).join(' · ')));
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

let pending = false;
function schedule(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(render);
}

function render(): void {
  pending = false;
  if (!charts || timeline.length === 0) return;
  const last = timeline.length - 1;
  if (live || cursor > last || cursor < 0) cursor = last;
  const scrub = $<HTMLInputElement>('scrub');
  scrub.max = String(last);
  scrub.value = String(cursor);
  const at = timeline.event(cursor)!;
  $('when').textContent = `${clock(at.wall)} · event ${cursor + 1} of ${timeline.length}${live ? ' · live' : ''}`;
  $('live').classList.toggle('on', live);
  const alive = status ? new Set(status.nodes.map((n) => n.id)) : null;
  const flagged = new Set(violations.flatMap((v) => v.actors));
  for (const a of timeline.actors()) {
    const step = timeline.stateAt(a, cursor);
    const finishedLongAgo = a.kind === 'job' && step !== null && isTerminalState(step.to) && step.wall < at.wall - keepFinishedMs;
    const existing = cards.get(a.key);
    if (!step || finishedLongAgo) {
      if (existing) existing.root.hidden = true;
      continue;
    }
    const c = card(a);
    c.root.hidden = false;
    c.root.classList.toggle('gone', live && a.kind !== 'job' && alive !== null && !alive.has(a.node));
    c.root.classList.toggle('violating', flagged.has(a.key));
    if (c.shown === step.to) continue;
    c.shown = step.to;
    c.label.textContent = step.to;
    const active = new Set(activeStateIds(a.kind, step.to));
    c.states.forEach((g, id) => g.setAttribute('data-active', active.has(id) ? 'true' : 'false'));
  }
  renderSide(at.wall);
}

function goTo(i: number): void {
  live = false;
  cursor = Math.max(0, Math.min(timeline.length - 1, i));
  schedule();
}

function onInspection(items: ShoalInspectionEvent[]): void {
  stately?.feed(items);
  for (const e of items) {
    const key = `${e.shoal.kind}:${e.shoal.actor}`;
    if ('snapshot' in e && e.snapshot) contexts.set(key, (e.snapshot as { context?: unknown }).context);
    if (e.type === '@xstate.event') {
      const list = xstateEvents.get(key) ?? [];
      list.push({ at: Number(e.createdAt), type: (e.event as { type: string }).type });
      if (list.length > 50) list.shift();
      xstateEvents.set(key, list);
    }
  }
  if (selected && !selected.startsWith('job:')) void refreshContext();
}

function onMessage(m: ServerMessage): void {
  switch (m.type) {
    case 'hello':
      charts = m.charts;
      templates = new Map(kinds.map((k) => [k, template(k, m.charts[k])]));
      keepFinishedMs = m.keepFinishedMs;
      violations = m.violations;
      live = m.mode === 'live';
      $('mode').textContent = m.mode === 'live' ? `live · ${m.source}` : `replay · ${m.source}`;
      if (m.stately && !stately) stately = statelyRelay($<HTMLButtonElement>('stately'));
      break;
    case 'transitions':
      if (
        timeline.add(m.items as Transition[]) > 0 && selected?.startsWith('job:') &&
        m.items.some((t) => `job:${t.actor}` === selected && isStateChange(t))
      ) void refreshContext();
      if (violations.length) renderMarks();
      break;
    case 'inspection':
      onInspection(m.items);
      break;
    case 'status':
      status = m.status;
      renderStatus();
      break;
  }
  schedule();
}

$('scrub').addEventListener('input', (e) => goTo(Number((e.target as HTMLInputElement).value)));
$('prev').addEventListener('click', () => goTo(cursor - 1));
$('next').addEventListener('click', () => goTo(cursor + 1));
$('live').addEventListener('click', () => {
  live = true;
  schedule();
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'ArrowLeft') goTo(cursor - 1);
  if (e.key === 'ArrowRight') goTo(cursor + 1);
});
new EventSource('/api/stream').onmessage = (e) => onMessage(JSON.parse(e.data) as ServerMessage);
