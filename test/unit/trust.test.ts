// Untrusted callers, the runtime-neutral parts: which reply subjects a node
// may answer (nats/reply.ts), and the exec built-in's opt-in and clean
// environment (node/handlers.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isInboxSubject, ReplyGuard } from '../../nats/reply.ts';
import { execHandler, type JobCtx, loadJobTypes } from '../../node/handlers.ts';

describe('reply subjects', () => {
  test('inboxes are answered; buckets, the JetStream API and cluster subjects never', () => {
    for (const s of ['_INBOX.abc.1', '_INBOX_shoal.x.y', '_INBOX_shoal_admin.k']) assert.ok(isInboxSubject(s), s);
    for (
      const s of [
        '$KV.shoal_jobs.job.a',
        '$KV.shoal_leases.leader',
        '$JS.API.STREAM.PURGE.KV_shoal_jobs',
        'shoal.node.n1.assign',
        'shoal.api.jobs.submit',
        '_INBOX', // no token after the prefix
        '_INBOXES.a',
        'x._INBOX.a',
        '_INBOX.*',
        '_INBOX.>',
        '_INBOX..a',
        '',
        undefined,
      ]
    ) assert.equal(isInboxSubject(s), false, String(s));
    assert.ok(isInboxSubject('app_replies.q', ['app_replies']), 'a configured prefix');
    assert.equal(isInboxSubject('app_replies.q'), false, 'only when configured');
  });

  test('property: a subject that does not start with an inbox token is refused', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), (s) => {
        if (!s.startsWith('_INBOX')) assert.equal(isInboxSubject(s), false, s);
      }),
    );
  });

  test('the guard answers inboxes only and counts what it drops', () => {
    const sent: Array<string | undefined> = [];
    const drops: string[] = [];
    const guard = new ReplyGuard({ onDrop: (s) => drops.push(s) });
    const msg = (reply?: string) => ({ reply, respond: () => (sent.push(reply), true) });
    assert.equal(guard.respond(msg('_INBOX.a.b'), 'test'), true);
    assert.equal(guard.respond(msg('$KV.shoal_jobs.job.x'), 'test'), false);
    assert.equal(guard.respond(msg(undefined), 'test'), false);
    assert.deepEqual(sent, ['_INBOX.a.b']);
    assert.deepEqual(drops, ['$KV.shoal_jobs.job.x', '(none)']);
    assert.equal(guard.dropped, 2);
  });
});

describe('exec', () => {
  test('is a job type only when allowed', async () => {
    assert.equal((await loadJobTypes()).handlers.exec, undefined);
    assert.equal((await loadJobTypes()).schemas.exec, undefined);
    const allowed = await loadJobTypes(undefined, { allowExec: true });
    assert.equal(allowed.handlers.exec, execHandler);
    assert.ok(allowed.schemas.exec);
  });

  test("runs with a clean environment: PATH and the job's own env, never the node's", async () => {
    if ((globalThis as { Deno?: unknown }).Deno) return; // spawning is the same node:child_process on Deno; once is enough
    process.env.SHOAL_TEST_SECRET = 'hunter2';
    try {
      const ctx = { signal: new AbortController().signal, phase: async () => {} } as unknown as JobCtx;
      const out = await execHandler({ cmd: 'env', env: { MINE: 'yes' } }, ctx) as { stdout: string };
      const vars = out.stdout.trim().split('\n').map((l) => l.slice(0, l.indexOf('='))).sort();
      assert.deepEqual(vars, ['MINE', 'PATH']);
    } finally {
      delete process.env.SHOAL_TEST_SECRET;
    }
  });
});
