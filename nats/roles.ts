// The three roles a secured cluster gives its connections, as NATS subject
// permissions derived from the cluster's names (one prefix, one place):
//
// - client: the public job, schedule and status API and nothing else. Replies come to
//   `_INBOX.>`, the only subjects it may subscribe to.
// - node:   what a node process needs: the cluster's own subjects, its buckets
//   and streams through the JetStream API, replies on its own inbox prefix
//   (`_INBOX_<prefix>`, so a client listening on `_INBOX.>` sees none of a
//   node's KV reads). Never the admin endpoints.
// - admin:  everything.
//
// Admin endpoints are checked by these permissions, not by the nodes: NATS
// passes no identity with a request, and the server refuses a publish to
// `<prefix>.api.nodes.>` from any role but admin before a node sees it. Nodes
// answer any request only when its reply goes to an inbox (`_INBOX…`,
// nats/reply.ts): NATS does not check a reply subject against the
// requester's permissions, and a node's own permissions reach its buckets.
// Admin connections take their replies on `_INBOX_<prefix>_admin` (in
// admin.json), out of a client's sight.
import type { Names } from './subjects.ts';

export const roles = ['admin', 'node', 'client'] as const;
export type Role = (typeof roles)[number];

export type SubjectPermissions = {
  publish: { allow: string[]; deny?: string[] };
  subscribe: { allow: string[]; deny?: string[] };
};

/** The streams behind the cluster's buckets and streams (KV buckets are streams named KV_<bucket>). */
function streamsOf(n: Names): string[] {
  return [
    `KV_${n.jobsBucket}`,
    `KV_${n.checkpointsBucket}`,
    `KV_${n.leasesBucket}`,
    `KV_${n.schedulesBucket}`,
    n.eventsStream,
    n.workStream,
  ];
}

/** The endpoints only admin may call. */
export function adminSubjects(n: Names): string[] {
  return [n.api('nodes.>')];
}

export function permissionsFor(role: Role, n: Names): SubjectPermissions {
  if (role === 'admin') return { publish: { allow: ['>'] }, subscribe: { allow: ['>'] } };
  if (role === 'client') {
    return { publish: { allow: [n.api('jobs.*'), n.api('schedules.*'), n.api('status')] }, subscribe: { allow: ['_INBOX.>'] } };
  }
  // Only what nodes do: create and read their streams, read messages, run consumers. Never delete or update
  // a stream (a node could otherwise re-create one that republishes onto an admin subject); purge only the
  // jobs and checkpoints streams (retention's compaction, below).
  const js = streamsOf(n).flatMap((s) => [
    `$JS.API.STREAM.INFO.${s}`,
    `$JS.API.STREAM.CREATE.${s}`,
    `$JS.API.STREAM.MSG.GET.${s}`,
    `$JS.API.CONSUMER.CREATE.${s}`,
    `$JS.API.CONSUMER.CREATE.${s}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${s}.>`,
    `$JS.API.CONSUMER.INFO.${s}.>`,
    `$JS.API.CONSUMER.DELETE.${s}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${s}.>`,
    `$JS.API.DIRECT.GET.${s}`,
    `$JS.API.DIRECT.GET.${s}.>`,
    `$JS.ACK.${s}.>`,
    `$JS.FC.${s}.>`,
  ]);
  const kv = [n.jobsBucket, n.checkpointsBucket, n.leasesBucket, n.schedulesBucket].map((b) => `$KV.${b}.>`);
  // Retention leaves nothing behind: the leader removes the markers of purged records and whole checkpoints by a
  // subject-filtered stream purge (no new power: a node may already delete every key of these buckets).
  const compaction = [n.jobsBucket, n.checkpointsBucket].map((b) => `$JS.API.STREAM.PURGE.KV_${b}`);
  return {
    publish: {
      // Replies: to clients, to other nodes, to admin tools.
      allow: [
        `${n.prefix}.>`,
        '$JS.API.INFO',
        '$JS.API.STREAM.NAMES',
        ...js,
        ...kv,
        ...compaction,
        '_INBOX.>',
        `${n.nodeInbox}.>`,
        `${n.adminInbox}.>`,
      ],
      deny: adminSubjects(n),
    },
    subscribe: { allow: [`${n.prefix}.>`, `${n.nodeInbox}.>`, '$SRV.>'] },
  };
}

export type RoleUser = { user: string; password: string; role: Role };

/** The `authorization` block of a nats-server config: each user with its role's permissions. Anonymous connections are refused. */
export function authorizationConfig(users: RoleUser[], n: Names): string {
  const q = (s: string) => JSON.stringify(s);
  const list = (xs: string[]) => `[${xs.map(q).join(', ')}]`;
  const side = (p: { allow: string[]; deny?: string[] }) => `{ allow: ${list(p.allow)}${p.deny ? `, deny: ${list(p.deny)}` : ''} }`;
  const entries = users.map((u) => {
    const p = permissionsFor(u.role, n);
    return `    { user: ${q(u.user)}, password: ${q(u.password)}, permissions: { publish: ${side(p.publish)}, subscribe: ${
      side(p.subscribe)
    } } }`;
  });
  return `authorization {\n  users: [\n${entries.join(',\n')}\n  ]\n}\n`;
}
