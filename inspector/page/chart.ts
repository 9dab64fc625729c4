// Statecharts on the inspector page, in two sizes. Full: the machine drawn as
// its layout (compound states nested, transitions as labelled edges) with the
// active states marked, for the one selected actor. Compact: the active state
// path as a breadcrumb, for every actor in the grid and the table. Both carry
// the DOM contract: `data-state-id` (the XState state id) with
// `data-active="true"` on each active state.
import type { ChartLayout } from '../layout.ts';
import { activeStateIds, type Kind } from '../model.ts';
import { el, svg } from './dom.ts';

/** The machine's full chart: one SVG per machine, cloned for the selected actor. */
export function chartTemplate(kind: Kind, layout: ChartLayout): SVGSVGElement {
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

/** Mark the active states of a full chart. */
export function markActive(chart: Element, kind: Kind, path: string): void {
  const active = new Set(activeStateIds(kind, path));
  chart.querySelectorAll('[data-state-id]').forEach((g) =>
    g.setAttribute('data-active', active.has(g.getAttribute('data-state-id')!) ? 'true' : 'false')
  );
}

/** The compact chart: `running › member › ready`, each step an active state. Replaces `box`'s children. */
export function compactState(box: Element, kind: Kind, path: string): void {
  const ids = activeStateIds(kind, path).slice(1);
  box.replaceChildren(
    ...ids.map((id, i) =>
      el('span', { 'data-state-id': id, 'data-active': 'true', class: i === ids.length - 1 ? 'leaf' : '' }, id.split('.').at(-1)!)
    ),
  );
  box.setAttribute('title', path);
  box.setAttribute('data-path', path);
}
