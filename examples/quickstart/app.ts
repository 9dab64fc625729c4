// The five-minute app: a job type, a worker that runs it and a client that
// submits one and awaits its result, in one file. Run it against any Shoal
// cluster (`npx shoal up` starts one) or a bare nats-server with JetStream:
//   NATS_URL=nats://127.0.0.1:4222 node app.js   (after tsc; Node 23.6+ runs app.ts as is)
import { z } from 'zod';
import { createClient, JobFailedError } from 'shoal/client';
import { defineJob, NonRetryableError, Worker } from 'shoal/worker';

const servers = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

export const resize = defineJob({
  type: 'resize',
  input: z.object({ url: z.string().url(), width: z.number().int().positive().default(256) }),
  retry: { maxAttempts: 5, backoff: 'exponential', baseMs: 200, jitter: true },
  timeoutMs: 60_000,
  handler: async (input, ctx) => {
    // Resume where an earlier attempt (on a node that died) checkpointed.
    let done = (ctx.restored as { done: number } | undefined)?.done ?? 0;
    for (; done < 4; done++) {
      await ctx.sleep(50); // the work; rejects when the job is cancelled or times out
      await ctx.checkpoint({ done: done + 1 }, (done + 1) / 4);
    }
    return { url: input.url, width: input.width, bytes: 1234 };
  },
});

export const refuse = defineJob({
  type: 'refuse',
  handler: () => {
    throw new NonRetryableError('this input can never work');
  },
});

const worker = await Worker.start({ servers, jobs: [resize, refuse], id: 'w1', slots: 4, log: false });
const client = await createClient({ servers });

const job = await client.submit(resize, { url: 'https://example.com/cat.png' }, { priority: 5 });
for await (const p of job.progress({ intervalMs: 20 })) console.log(`progress ${p.state} ${p.progress}`);
const result = await job.result(); // typed: { url: string; width: number; bytes: number }
console.log(`result ${JSON.stringify(result)} width=${result.width}`);

try {
  await (await client.submit(refuse, undefined)).result();
} catch (err) {
  if (err instanceof JobFailedError) console.log(`failed ${err.record.state} after ${err.record.attempts.length} attempt(s): ${err.record.error}`);
}

await worker.stop();
await client.close();
console.log('stopped');
