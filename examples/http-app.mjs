// An HTTP service in front of Shoal: POST /jobs/<type> with a JSON body
// submits a job of that type and answers with its result once it is done:
// 200 {id, result}; the API's own status for a refused submit (400 bad
// input, 404, 503 no nodes…); 502 when the job failed, with its error.
//   NATS_URL=nats://127.0.0.1:4222 PORT=8080 node http-app.mjs
//   curl -s localhost:8080/jobs/greet -d '{"name":"Ada"}'
import { createServer } from 'node:http';
import { ApiError, createClient, JobCancelledError, JobFailedError } from 'shoal/client';

const client = await createClient({ servers: process.env.NATS_URL });

const server = createServer(async (req, res) => {
  const send = (status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
  const type = /^\/jobs\/([A-Za-z0-9_$-]+)$/.exec(req.url ?? '')?.[1];
  if (req.method !== 'POST' || !type) return send(404, { error: 'POST /jobs/<type> with a JSON body' });
  let text = '';
  for await (const chunk of req) text += chunk;
  let input;
  try {
    input = text.trim() ? JSON.parse(text) : undefined;
  } catch {
    return send(400, { error: 'the body is not JSON' });
  }
  try {
    const job = await client.submit(type, input);
    send(200, { id: job.id, result: await job.result({ timeoutMs: 60_000 }) });
  } catch (err) {
    if (err instanceof JobFailedError || err instanceof JobCancelledError) return send(502, { id: err.record.id, error: err.record.error });
    if (err instanceof ApiError) return send(err.status, { error: err.message, code: err.code });
    send(500, { error: String(err?.message ?? err) });
  }
});

server.listen(Number(process.env.PORT ?? 8080), () => console.log(`listening on ${server.address().port}`));
process.on('SIGTERM', () => server.close(() => void client.close()));
