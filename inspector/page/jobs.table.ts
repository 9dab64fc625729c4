// The jobs table: search and filters (state, type, node, priority, since),
// newest first, a page of rows at a time (the DOM holds one page however many
// jobs there are), and cancel / retry on each row when the inspector's
// credentials allow them. Each row is an actor in the DOM contract, its state
// as a compact chart.
import { isTerminalState, type JobFilter, type JobRow, jobSorts, jobStateFilters, noFilter, selectJobs } from '../jobs.ts';
import { compactState } from './chart.ts';
import { $, ago, el } from './dom.ts';

export const pageSize = 100;

export type TableInput = {
  rows: Iterable<JobRow>;
  /** The wall time shown (now when live), and a job's state then (null: it did not exist yet). */
  now: number;
  stateAt: (row: JobRow) => string | null;
  live: boolean;
  selected: string | null;
  flagged: Set<string>;
  nodes: string[];
  actions: { enabled: boolean; why: string };
  select: (key: string) => void;
  act: (action: 'cancel' | 'retry', id: string) => void;
};

const filter: JobFilter = { ...noFilter };
let offset = 0;
let onChange = () => {};
const types = new Set<string>();

function options(select: HTMLSelectElement, values: readonly string[], any: string): void {
  const want = [any, ...values];
  const have = [...select.options].map((o) => o.value);
  if (want.length === have.length && want.every((v, i) => v === have[i])) return;
  const current = select.value;
  select.replaceChildren(...want.map((v) => el('option', { value: v }, v === '' ? `${any === '' ? 'any' : any}` : v)));
  select.value = want.includes(current) ? current : want[0]!;
}

/** Wire the toolbar once; `changed` redraws. */
export function setupJobsTable(changed: () => void): void {
  onChange = changed;
  const set = () => {
    filter.text = $<HTMLInputElement>('q').value;
    filter.state = $<HTMLSelectElement>('f-state').value as JobFilter['state'];
    filter.type = $<HTMLSelectElement>('f-type').value;
    filter.node = $<HTMLSelectElement>('f-node').value;
    filter.minPriority = Number($<HTMLInputElement>('f-priority').value) || 0;
    const since = $<HTMLSelectElement>('f-since').value;
    filter.sinceMs = since ? Number(since) : null;
    filter.sort = $<HTMLSelectElement>('f-sort').value as JobFilter['sort'];
    offset = 0;
    onChange();
  };
  options($<HTMLSelectElement>('f-state'), jobStateFilters.slice(1), jobStateFilters[0]);
  options($<HTMLSelectElement>('f-sort'), jobSorts.slice(1), jobSorts[0]);
  for (const id of ['q', 'f-state', 'f-type', 'f-node', 'f-priority', 'f-since', 'f-sort']) $(id).addEventListener('input', set);
  $('page-prev').addEventListener('click', () => {
    offset = Math.max(0, offset - pageSize);
    onChange();
  });
  $('page-next').addEventListener('click', () => {
    offset += pageSize;
    onChange();
  });
}

function actionButton(action: 'cancel' | 'retry', row: JobRow, input: TableInput): HTMLButtonElement {
  const b = el('button', {
    class: `act ${action}`,
    'data-action': action,
    title: input.actions.enabled ? `${action} ${row.id}` : input.actions.why,
  }, action);
  b.disabled = !input.actions.enabled;
  b.addEventListener('click', (e) => {
    e.stopPropagation();
    input.act(action, row.id);
  });
  return b;
}

/** Rows drawn, by job id, kept while they show: a row is rebuilt only when what it shows changed (a click on it is never lost to a redraw). */
const drawn = new Map<string, { tr: HTMLTableRowElement; sig: string; age: HTMLElement }>();

function rowElement(row: JobRow, state: string, input: TableInput): HTMLTableRowElement {
  const key = `job:${row.id}`;
  const sig = JSON.stringify([row.updatedAt, state, input.live, input.selected === key, input.flagged.has(key), input.actions.enabled]);
  const had = drawn.get(row.id);
  if (had?.sig === sig) {
    had.age.textContent = ago(input.now - row.createdAt);
    return had.tr;
  }
  const tr = el('tr', { 'data-actor-id': key, 'data-actor-kind': 'job', class: 'job' });
  tr.classList.toggle('selected', input.selected === key);
  tr.classList.toggle('violating', input.flagged.has(key));
  const chart = el('td', { class: 'states' });
  compactState(chart, 'job', state);
  const acts = el('td', { class: 'acts' });
  if (input.live && !isTerminalState(state)) acts.append(actionButton('cancel', row, input));
  if (input.live && /^(failed|cancelled)/.test(state)) acts.append(actionButton('retry', row, input));
  const age = el('td', { class: 'num', title: new Date(row.createdAt).toISOString() }, ago(input.now - row.createdAt));
  tr.append(
    el('td', { class: 'id', title: row.id }, row.id),
    el('td', {}, row.type),
    chart,
    el('td', {}, row.owner ?? '–'),
    el('td', { class: 'num' }, String(row.priority)),
    el('td', { class: 'num' }, String(row.attempt)),
    el('td', { class: 'num' }, `${Math.round(row.progress * 100)}%`),
    age,
    el('td', { class: 'why', title: row.error ?? row.pendingReason ?? '' }, row.error ?? row.pendingReason ?? ''),
    acts,
  );
  tr.addEventListener('click', () => input.select(key));
  if (had) had.tr.replaceWith(tr);
  drawn.set(row.id, { tr, sig, age });
  return tr;
}

/** Draw the page of rows the filter selects. Returns how many jobs match. */
export function renderJobs(input: TableInput): number {
  for (const r of input.rows) types.add(r.type);
  options($<HTMLSelectElement>('f-type'), [...types].sort(), '');
  options($<HTMLSelectElement>('f-node'), input.nodes, '');
  const matched = selectJobs(input.rows, filter, input.now, input.stateAt);
  if (offset >= matched.length) offset = Math.max(0, Math.floor((matched.length - 1) / pageSize) * pageSize);
  const page = matched.slice(offset, offset + pageSize);
  const trs = page.map(({ row, state }) => rowElement(row, state, input));
  const body = $('jobs-body');
  if (trs.length !== body.children.length || trs.some((tr, i) => body.children[i] !== tr)) body.replaceChildren(...trs);
  const showing = new Set(page.map((x) => x.row.id));
  for (const id of drawn.keys()) if (!showing.has(id)) drawn.delete(id);
  $('page-info').textContent = matched.length === 0
    ? 'no jobs match'
    : `${(offset + 1).toLocaleString('en')}–${(offset + page.length).toLocaleString('en')} of ${matched.length.toLocaleString('en')}`;
  $<HTMLButtonElement>('page-prev').disabled = offset === 0;
  $<HTMLButtonElement>('page-next').disabled = offset + pageSize >= matched.length;
  $('actions-why').textContent = input.actions.enabled ? '' : input.actions.why;
  return matched.length;
}
