// The nodes grid: one compact tile per node process actor, its coordinator and
// its leases inside it, with what status says of it (leader, slots in use,
// policy, runtime). A tile is redrawn only when what it shows changed, so a
// hundred nodes cost little per frame.
import type { ActorTimeline, Kind, StatusView } from '../model.ts';
import { compactState } from './chart.ts';
import { byName, el } from './dom.ts';

type NodeView = StatusView['nodes'][number];

/** What the grid draws for one actor at the moment shown. */
export type ActorAt = { a: Pick<ActorTimeline, 'key' | 'kind' | 'actor' | 'node'>; path: string; wall: number };

export type NodesInput = {
  /** Node, coordinator and lease actors with their state at the moment shown. */
  actors: ActorAt[];
  status: StatusView | null;
  live: boolean;
  selected: string | null;
  flagged: Set<string>;
  select: (key: string) => void;
};

type Tile = { root: HTMLElement; sig: string; subs: Map<string, { root: HTMLElement; sig: string }> };
const tiles = new Map<string, Tile>();

function tile(grid: HTMLElement, node: string, select: (key: string) => void): Tile {
  let t = tiles.get(node);
  if (t) return t;
  const root = el('div', { class: 'tile', 'data-node': node });
  root.append(el('div', { class: 'top' }), el('div', { class: 'load' }), el('div', { class: 'meta' }), el('div', { class: 'subs' }));
  root.addEventListener('click', () => root.dataset.actorId && select(root.dataset.actorId));
  t = { root, sig: '', subs: new Map() };
  tiles.set(node, t);
  const next = [...tiles.keys()].filter((k) => byName(k, node) > 0).sort(byName)[0];
  grid.insertBefore(root, next ? tiles.get(next)!.root : null);
  return t;
}

function drawSub(t: Tile, x: ActorAt, input: NodesInput): void {
  let s = t.subs.get(x.a.key);
  if (!s) {
    const root = el('div', { class: 'sub', 'data-actor-id': x.a.key, 'data-actor-kind': x.a.kind });
    root.append(
      el('span', { class: 'who' }, x.a.kind === 'lease' ? `lease ${x.a.actor.replace(`${x.a.node}-`, '')}` : x.a.kind),
      el('span', { class: 'states' }),
    );
    root.addEventListener('click', (e) => {
      e.stopPropagation();
      input.select(x.a.key);
    });
    s = { root, sig: '' };
    t.subs.set(x.a.key, s);
    const subs = t.root.querySelector('.subs')!;
    const next = [...subs.children].find((c) => byName(c.getAttribute('data-actor-id')!, x.a.key) > 0);
    subs.insertBefore(root, next ?? null);
  }
  const sig = `${x.path}|${input.selected === x.a.key}|${input.flagged.has(x.a.key)}`;
  if (sig === s.sig) return;
  s.sig = sig;
  compactState(s.root.querySelector('.states')!, x.a.kind as Kind, x.path);
  s.root.classList.toggle('selected', input.selected === x.a.key);
  s.root.classList.toggle('violating', input.flagged.has(x.a.key));
}

function drawNode(t: Tile, node: string, self: ActorAt | undefined, view: NodeView | undefined, input: NodesInput): void {
  const leader = input.status?.leader;
  const role = leader?.nodeId === node ? 'leader' : leader?.standby === node ? 'standby' : '';
  const gone = input.live && input.status !== null && !view;
  const sig = JSON.stringify([
    self?.path,
    role,
    gone,
    view?.state,
    view?.running,
    view?.slots,
    view?.policy,
    input.selected,
    input.flagged.has(`node:${node}`),
    input.live,
  ]);
  if (sig === t.sig) return;
  t.sig = sig;
  const key = `node:${node}`;
  if (self) {
    t.root.setAttribute('data-actor-id', key);
    t.root.setAttribute('data-actor-kind', 'node');
  }
  t.root.classList.toggle('gone', gone);
  t.root.classList.toggle('selected', input.selected === key);
  t.root.classList.toggle('violating', input.flagged.has(key));
  t.root.dataset.health = gone
    ? 'gone'
    : !self
    ? 'unknown'
    : /ready/.test(self.path)
    ? 'ok'
    : /draining|joining/.test(self.path)
    ? 'warn'
    : 'bad';
  const top = t.root.querySelector('.top')!;
  const states = el('span', { class: 'states' });
  if (self) compactState(states, 'node', self.path);
  top.replaceChildren(el('b', {}, node), ...(role ? [el('span', { class: `badge ${role}` }, role)] : []), states);
  t.root.title = `${node}${role ? ` (${role})` : ''}: ${self?.path ?? 'no state seen'}`;
  const load = t.root.querySelector<HTMLElement>('.load')!;
  if (view) {
    const bar = el('span', { class: 'bar' });
    const fill = el('i');
    fill.style.width = `${view.slots ? Math.min(100, (100 * view.running) / view.slots) : 0}%`;
    bar.append(fill);
    load.replaceChildren(bar, el('span', {}, `${view.running}/${view.slots} slots${input.live ? '' : ' (now)'}`));
    t.root.querySelector('.meta')!.textContent = `${view.runtime} · ${view.policy} · pid ${view.pid}`;
  } else {
    load.replaceChildren(el('span', { class: 'muted' }, gone ? 'gone (not in status)' : '–'));
    t.root.querySelector('.meta')!.textContent = '';
  }
}

/** Draw the grid: a tile per node with its own actor, coordinator and leases. Returns how many tiles show. */
export function renderNodes(grid: HTMLElement, input: NodesInput): number {
  const byNode = new Map<string, ActorAt[]>();
  for (const x of input.actors) {
    const list = byNode.get(x.a.node) ?? [];
    list.push(x);
    byNode.set(x.a.node, list);
  }
  const views = new Map((input.status?.nodes ?? []).map((v) => [v.id, v]));
  if (input.live) { for (const id of views.keys()) if (!byNode.has(id)) byNode.set(id, []); }
  for (const [node, t] of tiles) {
    const shown = byNode.has(node);
    t.root.hidden = !shown;
  }
  for (const [node, list] of byNode) {
    const t = tile(grid, node, input.select);
    t.root.hidden = false;
    drawNode(t, node, list.find((x) => x.a.kind === 'node'), views.get(node), input);
    const keys = new Set(list.map((x) => x.a.key));
    for (const x of list) if (x.a.kind !== 'node') drawSub(t, x, input);
    for (const [k, s] of t.subs) s.root.hidden = !keys.has(k);
  }
  return byNode.size;
}

/** The top bar: leader, nodes by state, slots busy, jobs by state. */
export function renderCluster(box: HTMLElement, status: StatusView | null): void {
  box.replaceChildren();
  if (!status) return;
  box.append(el('span', {}, status.leader ? `leader ${status.leader.nodeId} (epoch ${status.leader.epoch})` : 'no leader'));
  const byState = new Map<string, number>();
  for (const n of status.nodes) byState.set(n.state, (byState.get(n.state) ?? 0) + 1);
  box.append(el('span', {}, `${status.nodes.length} nodes: ${[...byState].map(([k, v]) => `${v} ${k}`).join(', ')}`));
  const busy = status.nodes.reduce((s, n) => s + n.running, 0);
  const slots = status.nodes.reduce((s, n) => s + n.slots, 0);
  box.append(el('span', {}, `${busy}/${slots} slots busy`));
  if (status.jobs) {
    box.append(el('span', {}, Object.entries(status.jobs).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(' · ')));
  }
}
