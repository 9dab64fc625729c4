// What the browser tests share: Debian's Chromium driven by playwright-core
// (never a downloaded browser), `shoal` commands as child processes, and a
// page opened with its requests and errors recorded.
import { type ChildProcess, spawn } from 'node:child_process';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { NatsConnection } from '@nats-io/transport-node';
import { shoalCommand } from '../../harness/spawn.ts';

export const chromiumPath = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });

/** Start `shoal <args>` and resolve with the first match of `re` in its output. */
export function start(args: string[], re: RegExp): { child: ChildProcess; found: Promise<RegExpExecArray> } {
  const [cmd, argv] = shoalCommand('node', args);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const found = new Promise<RegExpExecArray>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`shoal ${args[0]}: no ${re} within 60 s:\n${out}`)), 60_000);
    const on = (b: Buffer) => {
      out += b.toString();
      const m = re.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m);
        // Found: stop collecting (a long-running fleet logs without end); the pipes are still drained.
        child.stdout!.off('data', on).resume();
        child.stderr!.off('data', on).resume();
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (code) => reject(new Error(`shoal ${args[0]} exited (${code}):\n${out}`)));
  });
  found.catch(() => {});
  return { child, found };
}

/** SIGTERM, and SIGKILL if it has not exited 5 s later: a stuck process fails its test rather than hanging the suite. */
export async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(killer);
}

/** Open `url` in a new page; `init` runs in the page before its own scripts. */
export async function open(browser: Browser, url: string, init?: () => void) {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  if (init) await page.addInitScript(init);
  const hosts = new Set<string>();
  const errors: string[] = [];
  page.on('request', (r) => hosts.add(new URL(r.url()).hostname));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(url);
  return { page, hosts, errors };
}

export const active = (page: Page, actor: string, state: string) =>
  page.waitForSelector(`[data-actor-id="${actor}"] [data-state-id="${state}"][data-active="true"]`, { timeout: 30_000 });

/** After a suite: the browser, the NATS connection, then the processes, last started first. */
export async function teardown(browser: Browser | undefined, nc: NatsConnection | undefined, ...children: Array<ChildProcess | undefined>) {
  await browser?.close();
  await nc?.close();
  for (const child of children) await stop(child);
}
