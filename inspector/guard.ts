// Who may talk to the inspector's page server. A page on another site can make
// the browser send requests to 127.0.0.1 (and, with DNS rebinding, read the
// answers under its own name): so a request must name an allowed host in its
// `Host` header, and a cross-origin one an allowed origin. Allowed: localhost
// names, IP address literals (a rebinding attack needs a DNS name), the
// address the server listens on, and names given with `--allow-host`.
import { isIP } from 'node:net';

const loopbackNames = ['localhost', 'localhost.'];

/** The host part of a `Host` header or an origin's authority, lower case, without port or IPv6 brackets. */
export function hostOf(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']') > 0 ? a.indexOf(']') : undefined);
  const colon = a.lastIndexOf(':');
  return colon > 0 && a.indexOf(':') === colon ? a.slice(0, colon) : a;
}

export function hostAllowed(host: string, extra: readonly string[]): boolean {
  const h = hostOf(host);
  if (h === '') return false;
  return isIP(h) !== 0 || loopbackNames.includes(h) || h.endsWith('.localhost') || extra.some((x) => hostOf(x) === h);
}

/**
 * Whether a request may be served: its `Host` names an allowed host, and its `Origin` (sent by browsers on
 * cross-origin and state-changing requests), if any, is an http(s) origin of an allowed host.
 */
export function requestAllowed(headers: { host?: string; origin?: string }, extra: readonly string[]): boolean {
  if (!headers.host || !hostAllowed(headers.host, extra)) return false;
  if (headers.origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(headers.origin);
  } catch {
    return false; // "null" (a sandboxed or file page) and anything else unreadable
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && hostAllowed(url.host, extra);
}
