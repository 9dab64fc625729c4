// The inspector as a person uses it: `shoal up` in one process, `shoal inspect`
// in another, the page in headless Chromium (Debian's, driven by
// playwright-core; never a downloaded browser). Three node actors appear; a
// primes job's machine goes running → succeeded live; scrubbing back to its
// first event shows it queued; no request leaves loopback; no page error.
// A saved chaos failure opens with its findings on the timeline.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Browser } from 'playwright-core';
import '../helpers.ts';
import { active, chromiumPath, launchChromium, open, start, stop, teardown } from './browser.ts';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';

const n = names();
const dir = mkdtempSync(join(tmpdir(), 'shoal-inspect-test-'));

describe(
  'shoal inspect in a browser',
  // A bounded suite: a stuck page or process fails here in minutes instead of holding the whole run.
  { skip: !existsSync(chromiumPath) && `no Chromium at ${chromiumPath} (npm test installs Debian's)`, timeout: 300_000 },
  () => {
    let browser: Browser;
    let up: ChildProcess;
    let inspect: ChildProcess;
    let nc: NatsConnection;
    let url: string;
    let natsUrl: string;

    before(async () => {
      const u = start(['up', '--port', '0', '--nodes', '3', '--lease-ttl', '1000'], /Try: shoal status --nats (\S+)/);
      up = u.child;
      const nats = natsUrl = (await u.found)[1]!;
      nc = await connect({ servers: nats });
      const i = start(['inspect', '--nats', nats, '--port', '0'], /Shoal inspector: (http:\/\/\S+)/);
      inspect = i.child;
      url = (await i.found)[1]!;
      browser = await launchChromium();
    });
    after(() => teardown(browser, nc, inspect, up));

    test('three nodes appear; a job goes running → succeeded live; scrubbing back shows it as created; only loopback, no errors', async () => {
      const { page, hosts, errors } = await open(browser, url);
      await page.waitForFunction(() => document.querySelectorAll('[data-actor-kind="node"]').length === 3, undefined, { timeout: 30_000 });
      assert.equal(await page.locator('[data-actor-kind="coordinator"]').count(), 3);
      // One leader among the three coordinators, the others followers.
      await page.waitForFunction(
        () =>
          document.querySelectorAll('[data-actor-kind="coordinator"] [data-state-id="coordinator.active.leader"][data-active="true"]')
            .length === 1,
        undefined,
        { timeout: 30_000 },
      );
      assert.ok(await page.locator('[data-actor-kind="lease"]').count() >= 6);
      // The states drawn carry XState ids; exactly one leaf path is active per node.
      assert.ok(
        await page.locator('[data-actor-kind="node"] [data-state-id="node.running.member.ready"][data-active="true"]').count() >= 1,
      );

      await callApi(nc, n, 'jobs.submit', { type: 'primes', id: 'insp-1', input: { limit: 200_000, chunk: 10_000, pauseMs: 100 } });
      await active(page, 'job:insp-1', 'job.running');
      assert.equal(await page.getAttribute('[data-actor-id="job:insp-1"]', 'data-actor-kind'), 'job');
      await page.click('[data-actor-id="job:insp-1"]');
      const shot = process.env.SHOAL_SCREENSHOT ?? join(dir, 'inspector.png');
      // The whole page in one picture: a viewport as tall as the page, so the fixed timeline sits at the bottom.
      const viewport = page.viewportSize()!;
      await page.setViewportSize({ width: viewport.width, height: await page.evaluate(() => document.body.scrollHeight) });
      await page.screenshot({ path: shot });
      await page.setViewportSize(viewport);
      // The chart enlarged over the page, and Esc back.
      await page.click('#enlarge');
      await page.waitForSelector('#detail.big');
      if (process.env.SHOAL_SCREENSHOT_CHART) await page.screenshot({ path: process.env.SHOAL_SCREENSHOT_CHART });
      await page.keyboard.press('Escape');
      await page.waitForSelector('#detail:not(.big)');
      await active(page, 'job:insp-1', 'job.succeeded');
      // The row is compact (only its active states); the selected job's full chart marks every state.
      assert.equal(await page.locator('[data-actor-id="job:insp-1"] [data-state-id="job.running"]').count(), 0);
      await page.waitForSelector('#detail[data-selected="job:insp-1"] [data-state-id="job.succeeded"][data-active="true"]');
      assert.equal(await page.getAttribute('#detail [data-state-id="job.running"]', 'data-active'), 'false');

      // Time travel: the job's first event (its submit: the dispatcher creates it already assigned) shows it so, nothing later active.
      await page.click('#events tr.event:last-child');
      await active(page, 'job:insp-1', 'job.assigned');
      await page.waitForSelector('#detail [data-state-id="job.assigned"][data-active="true"]');
      assert.equal(await page.getAttribute('#detail [data-state-id="job.succeeded"]', 'data-active'), 'false');
      await page.click('#live');
      await active(page, 'job:insp-1', 'job.succeeded');

      assert.deepEqual([...hosts], ['127.0.0.1'], 'the page asked no other host');
      assert.deepEqual(errors, []);
    });

    test("--stately relays the nodes' machines to Stately's inspector window (served here by a stand-in)", async () => {
      const r = start(['inspect', '--nats', natsUrl, '--port', '0', '--stately'], /Shoal inspector: (http:\/\/\S+)/);
      const context = await browser.newContext();
      try {
        // No internet here: the stand-in answers for stately.ai/inspect as its receiver does (createBrowserReceiver).
        await context.route('https://stately.ai/**', (route) =>
          route.fulfill({
            contentType: 'text/html',
            body: `<script>window.got = []; addEventListener('message', (e) => window.got.push(e.data));
              opener.postMessage({ type: '@statelyai.connected' }, '*');</script>`,
          }));
        const page = await context.newPage();
        await page.goto((await r.found)[1]!);
        await page.waitForSelector('#stately:not([hidden])');
        await page.waitForFunction(() => document.querySelectorAll('[data-actor-kind="node"]').length === 3, undefined, {
          timeout: 30_000,
        });
        const [popup] = await Promise.all([context.waitForEvent('page'), page.click('#stately')]);
        await popup.waitForFunction(
          () =>
            (window as unknown as { got: Array<{ type: string; name?: string }> }).got.filter((e) =>
              e.type === '@xstate.actor' && e.name === 'node'
            ).length >= 3,
          undefined,
          { timeout: 30_000 },
        );
      } finally {
        await context.close();
        await stop(r.child);
      }
    });

    test('cancel and retry need the admin credential: with node credentials they are off and the server refuses them', async () => {
      const authDir = join(dir, 'auth');
      const u = start(['up', '--port', '0', '--nodes', '1', '--auth', authDir], /Try: shoal status --connect (\S+)/);
      const inspectAs = async (role: 'node' | 'admin') => {
        const i = start(['inspect', '--connect', join(authDir, `${role}.json`), '--port', '0'], /Shoal inspector: (http:\/\/\S+)/);
        const { page, errors } = await open(browser, (await i.found)[1]!);
        return { i, page, errors };
      };
      try {
        await u.found;
        const asNode = await inspectAs('node');
        try {
          await asNode.page.waitForSelector('#actions-why:has-text("need the admin credential")', { timeout: 30_000 });
          // The token from the printed URL, sent by hand: still refused, by the server.
          const refused = await asNode.page.evaluate(async () => {
            const token = new URLSearchParams(location.search).get('token')!;
            const r = await fetch('/api/jobs/cancel', { method: 'POST', headers: { 'x-shoal-token': token }, body: '{"id":"x"}' });
            return [r.status, await r.text()];
          });
          assert.equal(refused[0], 403);
          assert.match(String(refused[1]), /admin credential/);
          assert.deepEqual(asNode.errors.filter((e) => !/403/.test(e)), []);
        } finally {
          await stop(asNode.i.child);
        }
        const asAdmin = await inspectAs('admin');
        try {
          await asAdmin.page.waitForFunction(() => document.getElementById('actions-why')?.textContent === '', undefined, {
            timeout: 30_000,
          });
          const noToken = await asAdmin.page.evaluate(async () =>
            (await fetch('/api/jobs/cancel', { method: 'POST', body: '{"id":"x"}' })).status
          );
          assert.equal(noToken, 403, 'a POST without the token is refused');
          const wrongBody = await asAdmin.page.evaluate(async () => {
            const headers = { 'x-shoal-token': new URLSearchParams(location.search).get('token')! };
            const a = await fetch('/api/jobs/cancel', { method: 'POST', headers, body: 'null' });
            const b = await fetch('/api/jobs/cancel', { method: 'POST', headers, body: 'x'.repeat(10_000) });
            return [a.status, b.status];
          });
          assert.deepEqual(wrongBody, [400, 413]);
          // The same page opened without the token in its URL only looks.
          const bare = await open(browser, asAdmin.page.url().replace(/\?token=.*$/, ''));
          await bare.page.waitForSelector('#actions-why:has-text("carries the token")', { timeout: 30_000 });
          await bare.page.close();
        } finally {
          await stop(asAdmin.i.child);
        }
      } finally {
        await stop(u.child);
      }
    });

    test('--replay opens a saved chaos failure with its findings on the timeline', async () => {
      const t = (seq: number, kind: string, actor: string, from: string | null, to: string, event: string, epoch: number | null) => ({
        kind,
        actor,
        node: 'n1',
        instance: 'i1',
        pid: 1,
        from,
        to,
        event,
        epoch,
        wall: 1_700_000_000_000 + seq * 10,
        mono: seq * 10,
        seq,
      });
      const history = [
        t(1, 'job', 'j1', null, 'queued', 'job.submit', 0),
        t(2, 'job', 'j1', 'queued', 'assigned', 'job.assign', 1),
        t(3, 'job', 'j1', 'assigned', 'running.computing', 'job.start', 1),
        t(4, 'job', 'j1', 'running.computing', 'succeeded', 'job.succeed', 1),
        t(5, 'job', 'j1', 'succeeded', 'succeeded', 'job.succeed', 1),
      ];
      const file = join(dir, 'failure.json');
      writeFileSync(
        file,
        JSON.stringify({
          kind: 'shoal-chaos-failure',
          history,
          violations: [{
            invariant: 'one-terminal-state',
            subject: 'j1',
            message: 'job j1 reached a terminal state 2 times',
            events: [history[3], history[4]],
          }],
        }),
      );
      const r = start(['inspect', '--replay', file, '--port', '0'], /Shoal inspector: (http:\/\/\S+)/);
      try {
        const { page, errors } = await open(browser, (await r.found)[1]!);
        await active(page, 'job:j1', 'job.succeeded');
        await page.waitForSelector('.violation[data-invariant="one-terminal-state"]');
        await page.waitForSelector('[data-actor-id="job:j1"].violating');
        assert.equal(await page.locator('#marks i').count(), 1);
        await page.click('.violation');
        // The cursor moves on the next redraw (at most 10 a second).
        await page.waitForFunction(() => /event 4 of 5/.test(document.getElementById('when')?.textContent ?? ''), undefined, {
          timeout: 5_000,
        });
        assert.match(await page.textContent('#when') ?? '', /event 4 of 5/);
        assert.deepEqual(errors, []);
      } finally {
        await stop(r.child);
      }
    });
  },
);
