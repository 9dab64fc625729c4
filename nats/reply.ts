// Where a node may send a reply. NATS does not check a requester's reply
// subject against the requester's permissions: a client that may only publish
// to `shoal.api.*` can still name `$KV.shoal_jobs.job.x` as its reply, and a
// node answering it would write that key with the node's own permissions. So
// every responder in a node replies only to an inbox subject (`_INBOX…`, or a
// prefix the operator configured); anything else is dropped and counted.
// See docs/operations.md, Security.

/** The inbox family every NATS client uses by default (`_INBOX.`) and Shoal's own (`_INBOX_<prefix>.`, `_INBOX_<prefix>_admin.`). */
export const inboxPrefix = '_INBOX';

/** A single subject token: no wildcards, no empty tokens. */
const plainSubject = /^[^\s*>.]+(\.[^\s*>.]+)*$/;

/**
 * Whether `subject` is a reply subject a node may publish to: its first token
 * is `_INBOX`, starts with `_INBOX_`, or is one of `extra` (configured inbox prefixes).
 */
export function isInboxSubject(subject: string | undefined | null, extra: readonly string[] = []): subject is string {
  if (!subject || !plainSubject.test(subject)) return false;
  const first = subject.slice(0, subject.indexOf('.') === -1 ? subject.length : subject.indexOf('.'));
  if (first === subject) return false; // an inbox is `<prefix>.<token>…`
  return first === inboxPrefix || first.startsWith(`${inboxPrefix}_`) || extra.includes(first);
}

/** The part of a NATS message a responder needs. */
export type Requester = {
  readonly reply?: string;
  respond(data?: Uint8Array, opts?: { headers?: unknown }): boolean;
};

/** Counts and reports replies that were refused (not an inbox), at most one log line per `logEveryMs`. */
export class ReplyGuard {
  readonly extra: readonly string[];
  dropped = 0;
  readonly #onDrop: (subject: string, where: string) => void;
  constructor(options: { extra?: readonly string[]; onDrop?: (subject: string, where: string) => void } = {}) {
    this.extra = options.extra ?? [];
    this.#onDrop = options.onDrop ?? (() => {});
  }

  /** Whether a request that came with this reply subject may be answered; a refusal is counted. */
  allows(reply: string | undefined, where: string): boolean {
    if (isInboxSubject(reply, this.extra)) return true;
    this.dropped++;
    this.#onDrop(String(reply ?? '(none)'), where);
    return false;
  }

  /** Respond to `msg` only if its reply subject is an inbox; returns whether it was sent. */
  respond(msg: Requester, where: string, data?: Uint8Array): boolean {
    if (!this.allows(msg.reply, where)) return false;
    return msg.respond(data);
  }
}

/** A guard that logs refusals, at most one line per 10 s with the count since (a hostile client must not flood the log). */
export function loggingReplyGuard(
  log: (msg: string) => void,
  options: { extra?: readonly string[]; onDrop?: () => void } = {},
): ReplyGuard {
  let lastLog = -Infinity;
  let since = 0;
  return new ReplyGuard({
    extra: options.extra,
    onDrop: (subject, where) => {
      options.onDrop?.();
      since++;
      const now = performance.now();
      if (now - lastLog < 10_000) return;
      lastLog = now;
      log(
        `refused to reply to '${
          subject.slice(0, 200)
        }' (${where}): replies go only to inbox subjects (${since} refused since the last note)`,
      );
      since = 0;
    },
  });
}
