// Small DOM helpers the inspector page's modules share.
const svgNS = 'http://www.w3.org/2000/svg';

export const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export const el = <K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};

export const svg = (tag: string, attrs: Record<string, string | number>) => {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
};

/** `2026-12-04 16:23:50.123` */
export const clock = (wall: number) => new Date(wall).toISOString().replace('T', ' ').slice(0, 23);

/** `4 s`, `12 min`, `3 h` ago. */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 90 ? `${s} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

/** Names in human order (`n2` before `n10`); one collator, as making one per comparison is slow. */
export const byName = new Intl.Collator('en', { numeric: true }).compare;
