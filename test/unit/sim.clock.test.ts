// The simulation's virtual clock: discrete events in due order, promise chains
// settled between them, paused views holding their timers (SIGSTOP), killed
// views running nothing, and XState `after` delays on virtual time.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, setup } from 'xstate';
import { SimClock } from '../../chaos/sim/clock.ts';

describe('sim clock', () => {
  test('timers fire in due order (ties in the order set), each with now() at its due time', async () => {
    const clock = new SimClock(1_000);
    const fired: string[] = [];
    const at = (name: string, ms: number) => clock.setTimeout(() => fired.push(`${name}@${clock.now()}`), ms);
    at('c', 30);
    at('a', 10);
    const cancelled = at('x', 15);
    at('b', 20);
    at('b2', 20);
    clock.clearTimeout(cancelled);
    await clock.advance(25);
    assert.deepEqual(fired, ['a@1010', 'b@1020', 'b2@1020']);
    assert.equal(clock.now(), 1_025);
    assert.equal(clock.mono(), 25);
    await clock.advance(5);
    assert.deepEqual(fired.at(-1), 'c@1030');
  });

  test('promise chains a timer starts settle before the next timer runs, still at its time', async () => {
    const clock = new SimClock();
    const log: string[] = [];
    clock.setTimeout(() => {
      void (async () => {
        for (let i = 0; i < 5; i++) await Promise.resolve();
        log.push(`chain done@${clock.now()}`);
        clock.setTimeout(() => log.push(`follow-up@${clock.now()}`), 0);
      })();
    }, 10);
    clock.setTimeout(() => log.push(`next@${clock.now()}`), 11);
    await clock.advance(20);
    assert.deepEqual(log, ['chain done@10', 'follow-up@10', 'next@11']);
  });

  test('a paused view holds its timers and deliveries until resume, then runs the overdue ones at once in due order', async () => {
    const clock = new SimClock();
    const stopped = clock.view();
    const running = clock.view();
    const log: string[] = [];
    stopped.setTimeout(() => log.push(`stopped 50@${clock.now()}`), 50);
    stopped.setTimeout(() => log.push(`stopped 20@${clock.now()}`), 20);
    running.setTimeout(() => log.push(`running 30@${clock.now()}`), 30);
    stopped.pause();
    clock.setTimeout(() => stopped.post(() => log.push(`delivered@${clock.now()}`)), 40);
    await clock.advance(100);
    assert.deepEqual(log, ['running 30@30'], 'only the running process ran');
    assert.equal(stopped.mono(), 100, "a stopped process's monotonic clock keeps running");
    stopped.resume();
    await clock.advance(0);
    assert.deepEqual(log, ['running 30@30', 'stopped 20@100', 'delivered@100', 'stopped 50@100']);
  });

  test('a timer cleared while held does not run; a killed view never runs anything again', async () => {
    const clock = new SimClock();
    const v = clock.view();
    const log: string[] = [];
    const t = v.setTimeout(() => log.push('cleared'), 10);
    v.setTimeout(() => log.push('killed'), 30);
    v.pause();
    await clock.advance(20);
    v.clearTimeout(t);
    v.resume();
    await clock.advance(0);
    v.kill();
    v.setTimeout(() => log.push('after kill'), 1);
    v.post(() => log.push('post after kill'));
    await clock.advance(100);
    assert.deepEqual(log, []);
  });

  test('XState `after` delays run on a view: on time, and held while paused', async () => {
    const machine = setup({}).createMachine({ initial: 'a', states: { a: { after: { 100: 'b' } }, b: {} } });
    const clock = new SimClock();
    const view = clock.view();
    const actor = createActor(machine, { clock: view }).start();
    await clock.advance(99);
    assert.equal(actor.getSnapshot().value, 'a');
    view.pause();
    await clock.advance(500);
    assert.equal(actor.getSnapshot().value, 'a', 'a stopped process does not move');
    view.resume();
    await clock.advance(0);
    assert.equal(actor.getSnapshot().value, 'b');
    actor.stop();
  });
});
