// `shoal up --auth DIR`: one user per role with a random password, the
// nats-server `authorization` block that gives each its permissions, and a
// connect file per role (DIR/admin.json, node.json, client.json) that any
// nats.js connect() takes as is.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { authorizationConfig, type Role, roles, type RoleUser } from '../nats/roles.ts';
import type { Names } from '../nats/subjects.ts';

export type RoleConnect = { servers: string[]; user: string; pass: string; inboxPrefix?: string };

export type ClusterAuth = {
  dir: string;
  /** The nats-server config block (also written to DIR/auth.conf). */
  config: string;
  users: RoleUser[];
  /** The connect file of a role. */
  file(role: Role): string;
  /** Write the connect files once the servers' URLs are known. */
  writeFiles(servers: string[]): void;
  connect(role: Role, servers: string[]): RoleConnect;
};

export function prepareAuth(dir: string, n: Names): ClusterAuth {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700); // an existing dir keeps its mode otherwise
  const users = roles.map((role) => ({ role, user: role, password: randomBytes(18).toString('base64url') }));
  const config = authorizationConfig(users, n);
  const secret = (path: string, text: string) => {
    writeFileSync(path, text, { mode: 0o600 });
    chmodSync(path, 0o600); // an existing file keeps its mode otherwise
  };
  secret(join(dir, 'auth.conf'), config);
  const file = (role: Role) => join(dir, `${role}.json`);
  const connect = (role: Role, servers: string[]) => {
    const u = users.find((x) => x.role === role)!;
    // Each role's replies on the inbox its permissions allow (a tool connecting as a node, such as shoal inspect, too).
    const inboxPrefix = role === 'admin' ? n.adminInbox : role === 'node' ? n.nodeInbox : undefined;
    return { servers, user: u.user, pass: u.password, ...(inboxPrefix ? { inboxPrefix } : {}) };
  };
  return {
    dir,
    config,
    users,
    file,
    connect,
    writeFiles: (servers) => {
      for (const role of roles) secret(file(role), `${JSON.stringify(connect(role, servers), null, 2)}\n`);
    },
  };
}
