// A node's Prometheus metrics (prom-client), served on `--metrics-port`:
// jobs by state, submit→start and end-to-end latency, auctions, lease
// renewals, losses and leader terms, checkpoint sizes and durations, the
// event and inspection feeds, and the process itself.
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isTerminal, lastAttempt } from '../machines/job.machine.ts';
import type { JobRecord } from '../api/contract.ts';
import type { Transition } from '../nats/events.ts';
import { defaults } from '../base/defaults.ts';
import type { Fairness } from '../api/contract.ts';
import type { NodeObserver } from './node.wiring.ts';

const seconds = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export type NodeMetrics = ReturnType<typeof nodeMetrics>;

/** Every metric, registered in `registry`. */
function defineMetrics(registry: Registry, liveJobs: () => Iterable<JobRecord>) {
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers });
  const histogram = (name: string, help: string, buckets: number[], labelNames: string[] = []) =>
    new Histogram({ name, help, buckets, labelNames, registers });
  return {
    jobs: new Gauge({
      name: 'shoal_jobs',
      help: "Live jobs by state, as this node's job index sees the cluster",
      labelNames: ['state'],
      registers,
      collect() {
        const counts: Record<string, number> = { queued: 0, assigned: 0, running: 0 };
        for (const r of liveJobs()) counts[r.state] = (counts[r.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    }),
    finished: counter('shoal_jobs_finished_total', 'Jobs this node moved to a terminal state', ['state']),
    started: counter('shoal_job_attempts_started_total', 'Attempts this node started (resumed ones included)', ['resumed']),
    startLatency: histogram(
      'shoal_job_start_seconds',
      'Submit → handler start (record createdAt → attempt startedAt), for attempts this node started',
      seconds,
    ),
    endToEnd: histogram('shoal_job_seconds', 'Submit → terminal state, for jobs this node finished', seconds, ['state']),
    auction: histogram('shoal_auction_seconds', 'One auction as leader: offer → assignments written', seconds),
    offered: counter('shoal_auction_jobs_offered_total', 'Jobs offered in auctions this node ran'),
    placed: counter('shoal_auction_jobs_assigned_total', 'Jobs assigned by auctions this node ran'),
    renewals: counter('shoal_lease_renewals_total', 'Lease renewals confirmed', ['lease']),
    losses: counter('shoal_lease_losses_total', 'Leases lost (fail-stop: the node fences itself, a leader steps down)', ['lease']),
    terms: counter('shoal_leader_terms_total', 'Leadership terms this node began (first election or failover)'),
    leading: new Gauge({ name: 'shoal_leader', help: '1 while this node leads', registers }),
    checkpointBytes: histogram('shoal_checkpoint_bytes', 'Encoded checkpoint size', [64, 256, 1024, 4096, 16384, 65536, 262144, 524288]),
    checkpointTime: histogram('shoal_checkpoint_seconds', 'Checkpoint write (CAS on the claimed slot)', seconds),
    events: counter('shoal_events_total', 'Transitions recorded into the events stream', ['kind']),
    inspectPublished: counter('shoal_inspect_events_published_total', 'Inspection events sent to live viewers'),
    inspectDropped: counter(
      'shoal_inspect_events_dropped_total',
      'Inspection events dropped (coalesced, over the queue bound, or disconnected) rather than blocking',
    ),
    repliesRefused: counter(
      'shoal_replies_refused_total',
      'Requests dropped unanswered because their reply subject was not an inbox (a caller naming another subject as its reply)',
    ),
  };
}

/** `liveJobs` reads the node's job index at scrape time (queued, assigned, running across the cluster). */
export function nodeMetrics(options: {
  nodeId: string;
  liveJobs: () => Iterable<JobRecord>;
  policy?: string;
  policyFallback?: boolean;
  /** Work per node and its Gini over the fairness window, as this node's index sees them. */
  fairness?: () => Fairness | null;
}) {
  const registry = new Registry();
  registry.setDefaultLabels({ node: options.nodeId });
  collectDefaultMetrics({ register: registry, prefix: 'shoal_' });
  const m = defineMetrics(registry, options.liveJobs);
  new Gauge({
    name: 'shoal_policy_info',
    help: 'the bid scorer this node uses (label policy), always 1',
    labelNames: ['policy'],
    registers: [registry],
  })
    .set({ policy: options.policy ?? 'unknown' }, 1);
  new Gauge({
    name: 'shoal_policy_fallback',
    help: '1 when the configured model could not be used and bids are scored by the heuristic',
    registers: [registry],
  })
    .set(options.policyFallback ? 1 : 0);
  new Gauge({
    name: 'shoal_work_job_seconds',
    help: `Job-seconds each node ran in the last ${defaults.fairnessWindowMs / 1000} s (label worker), as this node's job index sees it`,
    labelNames: ['worker'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [worker, s] of Object.entries(options.fairness?.()?.jobSeconds ?? {})) this.set({ worker }, s);
    },
  });
  new Gauge({
    name: 'shoal_work_gini',
    help: `Gini coefficient of that work across the nodes that ran any (0: even)`,
    registers: [registry],
    collect() {
      this.set(options.fairness?.()?.gini ?? 0);
    },
  });

  const observer: NodeObserver = {
    jobWritten(prev, next) {
      const a = lastAttempt(next);
      // Started: by a write of its own, or by the attempt's first write that also finished it.
      if (prev?.state === 'assigned' && next.attempt === prev.attempt && a?.startedAt && next.state !== 'assigned') {
        m.started.inc({ resumed: a.resumedFrom > 0 ? 'yes' : 'no' });
        m.startLatency.observe(Math.max(0, a.startedAt - next.createdAt) / 1000);
      }
      if (isTerminal(next) && (!prev || !isTerminal(prev))) {
        m.finished.inc({ state: next.state });
        m.endToEnd.observe({ state: next.state }, Math.max(0, next.updatedAt - next.createdAt) / 1000);
      }
    },
    checkpointSaved(bytes, ms) {
      m.checkpointBytes.observe(bytes);
      m.checkpointTime.observe(ms / 1000);
    },
    auction(ms, offered, awarded) {
      m.auction.observe(ms / 1000);
      m.offered.inc(offered);
      m.placed.inc(awarded);
    },
  };

  /** Every transition this node records: leases, leadership. */
  const transition = (t: Transition) => {
    m.events.inc({ kind: t.kind });
    if (t.kind === 'lease') {
      const lease = t.actor.endsWith('-leader') ? 'leader' : 'node';
      if (t.from === 'held.confirmed.renewing' && t.to.startsWith('held.confirmed')) m.renewals.inc({ lease });
      if (t.to === 'lost') m.losses.inc({ lease });
    }
    if (t.kind === 'coordinator') {
      const leads = t.to.startsWith('active.leader');
      if (leads && !(t.from ?? '').startsWith('active.leader')) m.terms.inc();
      m.leading.set(leads ? 1 : 0);
    }
  };

  return {
    registry,
    observer,
    transition,
    inspect: { published: m.inspectPublished, dropped: m.inspectDropped },
    repliesRefused: m.repliesRefused,
  };
}

/** Serve `/metrics` (Prometheus text format); anything else is 404. */
/** What the health endpoints say: the node machine's state, whether it runs at all, and whether it takes work. */
export type Health = () => { state: string; live: boolean; ready: boolean };

/**
 * `/metrics` (Prometheus), `/healthz` (200 while the node runs: a liveness probe restarts it otherwise) and
 * `/readyz` (200 while it is a member taking work; 503 while joining, reconnecting, draining or fenced).
 */
export function serveMetrics(registry: Registry, port: number, host: string, health?: Health): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (health && (path === '/healthz' || path === '/readyz')) {
      const h = health();
      const ok = path === '/healthz' ? h.live : h.ready;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(h)}\n`);
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics, health at /healthz and /readyz\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot serve metrics on ${host}:${port}: ${err.message}`, { cause: err })));
    server.listen(port, host, () => resolve(server));
  });
}
