// Every NATS subject, bucket and stream name Shoal uses, derived from one
// configurable prefix so that several clusters can share an account, and the
// key layout inside the buckets.
import { defaults } from '../base/defaults.ts';

const token = /^[A-Za-z0-9_-]+$/;

export function assertToken(what: string, value: string): string {
  if (!token.test(value)) {
    throw new TypeError(`${what} '${value}' must be letters, digits, '-' or '_' (it becomes a NATS subject token)`);
  }
  return value;
}

export function names(prefix: string = defaults.prefix) {
  assertToken('prefix', prefix);
  return {
    prefix,
    jobsBucket: `${prefix}_jobs`,
    checkpointsBucket: `${prefix}_ckpt`,
    leasesBucket: `${prefix}_leases`,
    /** Recurring jobs (`shoal schedule`). */
    schedulesBucket: `${prefix}_schedules`,
    eventsStream: `${prefix}_events`,
    /** Every transition of every actor. */
    allEvents: `${prefix}.evt.>`,
    /** A node's transitions, many per message (what nodes publish; readers unpack them). */
    eventBatch: (nodeId: string) => `${prefix}.evt.batch.${nodeId}`,
    /** Where node processes get their replies (KV reads among them): not `_INBOX`, which a client may subscribe to. */
    nodeInbox: `_INBOX_${prefix}`,
    /** Where admin tools get their replies (admin.json sets it): out of a client's sight too. */
    adminInbox: `_INBOX_${prefix}_admin`,
    /** The micro service's name and its endpoint group. */
    serviceName: prefix,
    apiGroup: `${prefix}.api`,
    api: (endpoint: string) => `${prefix}.api.${endpoint}`,
    /** The leader's offers; every ready node with free slots answers with bids. */
    auction: `${prefix}.auction`,
    /** `--placement pull`: the leader puts queued jobs on this work queue; nodes with free slots pull them. */
    workStream: `${prefix}_work`,
    work: `${prefix}.work`,
    workConsumer: 'workers',
    /** Hint that jobs were queued: wakes the leader's placement early. */
    jobsQueued: `${prefix}.jobs.queued`,
    nodeAssign: (nodeId: string) => `${prefix}.node.${nodeId}.assign`,
    /** Served by the dispatcher alone (`dispatch` placement): batched submits from the API nodes. */
    dispatchIntake: `${prefix}.dispatch.intake`,
    nodeCancel: (nodeId: string) => `${prefix}.node.${nodeId}.cancel`,
    /** Served only by one process incarnation: "no responders" means it is gone. */
    nodePing: (nodeId: string, instance: string) => `${prefix}.node.${nodeId}.ping.${instance}`,
    /** A node's live inspection events (XState/Stately shapes, CBOR batches), sent only while a viewer is around. */
    inspectEvents: (nodeId: string) => `${prefix}.inspect.ev.${nodeId}`,
    inspectAllEvents: `${prefix}.inspect.ev.>`,
    /** A viewer's request (also its heartbeat): every node answers with its actors' current snapshots. */
    inspectSync: `${prefix}.inspect.sync`,
    /** Asks for a job type's input JSON Schema: nodes that have one answer (JSON); none: "no responders". */
    typeSchema: (type: string) => `${prefix}.types.${type}.schema`,
  };
}

export type Names = ReturnType<typeof names>;
