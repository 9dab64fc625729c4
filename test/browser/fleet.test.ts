// The inspector on a cluster an operator would keep it open for: one node and
// a process of 100 virtual nodes, 10,000 jobs done before the page opens and
// more flowing while it is read. Measured and printed (docs/inspector.md has
// the figures): first paint, a filter's answer while jobs flow, the longest
// task, the page's heap. Asserted: the DOM contract, a DOM that holds one
// page of jobs however many there are, the filters, cancel and retry from the
// table, and generous bounds as regression guards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Browser, Page } from 'playwright-core';
import '../helpers.ts';
import { waitForReady, waitForStatus } from '../../harness/local.cluster.ts';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { active, chromiumPath, launchChromium, open, start, teardown } from './browser.ts';

const n = names();
const virtualNodes = 100;
const jobs = 10_000;

/** Submit `count` noop jobs `<prefix>-<i>`, 100 in flight; a submit that timed out on the loaded machine is sent again (same id: the same job). */
async function submitMany(nc: NatsConnection, prefix: string, count: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (next < count) {
      const i = next++;
      const body = { type: 'noop', id: `${prefix}-${i}`, input: { i }, priority: i % 10 };
      for (let tries = 1;; tries++) {
        try {
          await callApi(nc, n, 'jobs.submit', body);
          break;
        } catch (err) {
          if (tries === 5 || !/timeout/i.test((err as Error).message)) throw err;
        }
      }
    }
  }));
}

const heapMb = async (page: Page) => {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const { metrics } = await cdp.send('Performance.getMetrics');
  await cdp.detach();
  return Math.round(metrics.find((m) => m.name === 'JSHeapUsedSize')!.value / 2 ** 20);
};

/** Type into the search box and resolve with the ms until the table shows exactly the rows for it. */
async function searchTakes(page: Page, text: string, expectRows: number): Promise<number> {
  const t0 = Date.now();
  await page.fill('#q', text);
  await page.waitForFunction((want) => document.querySelectorAll('#jobs-body tr').length === want, expectRows, { timeout: 30_000 });
  return Date.now() - t0;
}

describe(
  `the inspector with ${virtualNodes} virtual nodes and ${jobs.toLocaleString('en')} jobs`,
  { skip: !existsSync(chromiumPath) && `no Chromium at ${chromiumPath} (npm test installs Debian's)`, timeout: 600_000 },
  () => {
    let browser: Browser;
    let up: ChildProcess;
    let fleet: ChildProcess;
    let inspect: ChildProcess;
    let nc: NatsConnection;
    let url: string;

    before(async () => {
      // Both with --json: their first JSON line says where they are.
      const u = start(['up', '--port', '0', '--nodes', '1', '--json'], /^\{"event":"ready".*\}$/m);
      up = u.child;
      const ready = JSON.parse((await u.found)[0]) as { nats: string[]; nodes: Array<{ id: string }> };
      assert.deepEqual(ready.nodes.map((x) => x.id), ['n1']);
      const nats = ready.nats[0]!;
      nc = await connect({ servers: nats });
      const f = start(['node', '--id', 'v', '--count', String(virtualNodes), '--nats', nats, '--slots', '2', '--io-slots', '0'], /./);
      fleet = f.child;
      await waitForReady([nats], virtualNodes + 1, { timeoutMs: 180_000 });
      const t0 = Date.now();
      await submitMany(nc, 'f', jobs);
      await waitForStatus([nats], (s) => s.jobs.succeeded >= jobs, { what: `${jobs} jobs succeeded`, timeoutMs: 300_000 });
      process.stdout.write(`# ${jobs} noop jobs on ${virtualNodes + 1} nodes in ${Date.now() - t0} ms\n`);
      const i = start(['inspect', '--nats', nats, '--port', '0', '--history', '1h', '--json'], /^\{"url".*\}$/m);
      inspect = i.child;
      url = (JSON.parse((await i.found)[0]) as { url: string }).url;
      browser = await launchChromium();
    });
    after(() => teardown(browser, nc, inspect, fleet, up));

    test('first paint, filters, responsiveness while jobs flow, bounded memory, cancel and retry', async () => {
      // The longest task the page runs, from its first script on.
      const { page, hosts, errors } = await open(browser, url, () => {
        const w = window as unknown as { longest: number };
        w.longest = 0;
        new PerformanceObserver((l) => l.getEntries().forEach((e) => (w.longest = Math.max(w.longest, e.duration))))
          .observe({ type: 'longtask' });
      });
      await page.waitForFunction(
        (want) =>
          document.getElementById('nodes-count')?.textContent === String(want.nodes) &&
          document.getElementById('jobs-count')?.textContent === want.jobs.toLocaleString('en'),
        { nodes: virtualNodes + 1, jobs },
        { timeout: 60_000 },
      );
      // From navigation to the page's own mark: the nodes and the jobs table drawn from what the server sent on joining.
      const firstPaint = Math.round(await page.evaluate(() => performance.getEntriesByName('shoal:first-paint')[0]!.startTime));
      await page.waitForFunction(() => /event \d{5,} of/.test(document.getElementById('when')?.textContent ?? ''), undefined, {
        timeout: 60_000,
      });
      if (process.env.SHOAL_SCREENSHOT_FLEET) await page.screenshot({ path: process.env.SHOAL_SCREENSHOT_FLEET });
      const historyLoaded = Math.round(await page.evaluate(() => performance.now()));
      const loadHeap = await heapMb(page);

      // The DOM contract, and a DOM of one page of jobs, not ten thousand. The grid redraws at most 10 times a second:
      // the count in the header can be ahead of the tiles for a moment.
      const drawn = (want: number) =>
        document.querySelectorAll('[data-actor-kind="node"]').length === want &&
        document.querySelectorAll('[data-actor-kind="coordinator"]').length === want;
      const waitedFrom = Date.now();
      await page.waitForFunction(drawn, virtualNodes + 1, { timeout: 10_000 });
      console.log(`# every node and coordinator drawn ${Date.now() - waitedFrom} ms after the counts said so`);
      assert.equal(await page.locator('[data-actor-kind="node"]').count(), virtualNodes + 1);
      assert.equal(await page.locator('[data-actor-kind="coordinator"]').count(), virtualNodes + 1);
      assert.equal(
        await page.locator('[data-actor-kind="coordinator"] [data-state-id="coordinator.active.leader"][data-active="true"]').count(),
        1,
      );
      assert.equal(await page.locator('#jobs-body tr[data-actor-kind="job"]').count(), 100);
      assert.equal(await page.locator('#jobs-body [data-state-id="job.succeeded"][data-active="true"]').count(), 100);
      const domNodes = await page.evaluate(() => document.getElementsByTagName('*').length);
      assert.ok(domNodes < 15_000, `${domNodes} DOM elements`);

      // Filters: priority 9 is a tenth of the jobs; a node's jobs; the next page.
      await page.fill('#f-priority', '9');
      await page.waitForFunction(() => document.getElementById('jobs-count')?.textContent === '1,000');
      await page.fill('#f-priority', '0');
      await page.selectOption('#f-node', 'v-7');
      await page.waitForFunction(() =>
        [...document.querySelectorAll('#jobs-body tr td:nth-child(4)')].every((td) => td.textContent === 'v-7')
      );
      await page.selectOption('#f-node', '');
      await page.click('#page-next');
      await page.waitForFunction(() => document.getElementById('page-info')?.textContent?.startsWith('101–200 of'));

      // While more jobs flow: search answers, the longest task, the heap.
      const flowing = submitMany(nc, 'g', 3_000);
      const answers: number[] = [];
      for (const i of [1_234, 4_242, 9_999, 5_678, 7_777]) answers.push(await searchTakes(page, `f-${i}`, 1));
      await flowing;
      await page.fill('#q', 'g-');
      await page.waitForFunction(() => document.getElementById('jobs-count')?.textContent === '3,000', undefined, { timeout: 60_000 })
        .catch(async (err) => {
          const s = await callApi(nc, n, 'status');
          throw new Error(
            `${await page.textContent('#jobs-count')} g- jobs shown (${await page.textContent('#when')}); status ${JSON.stringify(s.jobs)}`,
            { cause: err },
          );
        });
      const longest = await page.evaluate(() => (window as unknown as { longest: number }).longest);
      const flowHeap = await heapMb(page);
      answers.sort((a, b) => a - b);
      process.stdout.write(
        `# inspector, ${
          virtualNodes + 1
        } nodes, ${jobs} jobs: first paint ${firstPaint} ms, history in by ${historyLoaded} ms; search while 3,000 jobs flow: ` +
          `median ${answers[2]} ms, max ${answers[4]} ms; longest task ${Math.round(longest)} ms; heap ${loadHeap} MB loaded, ` +
          `${flowHeap} MB after the flow; ${domNodes} DOM elements\n`,
      );
      assert.ok(firstPaint < 10_000, `first paint took ${firstPaint} ms`);
      assert.ok(answers[4]! < 5_000, `a search took ${answers[4]} ms while jobs flowed`);
      assert.ok(flowHeap < 400, `the page holds ${flowHeap} MB`);

      // Cancel from the table, then retry the cancelled job: both through the inspector's (admin) connection.
      await page.fill('#q', 'long-1');
      await callApi(nc, n, 'jobs.submit', { type: 'primes', id: 'long-1', input: { limit: 50_000_000, chunk: 10_000, pauseMs: 200 } });
      await page.click('[data-actor-id="job:long-1"] button[data-action="cancel"]');
      await active(page, 'job:long-1', 'job.cancelled');
      await page.click('[data-actor-id="job:long-1"] button[data-action="retry"]');
      await page.waitForSelector('#toast:has-text("retrying long-1 as long-1-r1")');
      await page.waitForSelector('[data-actor-id="job:long-1-r1"]');
      await callApi(nc, n, 'jobs.cancel', { id: 'long-1-r1' });

      assert.deepEqual([...hosts], ['127.0.0.1'], 'the page asked no other host');
      assert.deepEqual(errors, []);
    });
  },
);
