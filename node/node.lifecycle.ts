// How a node follows what happens around it: stop requests (SIGTERM/SIGINT
// when it owns the process, a drain request, an embedding application's
// stop) and its link to NATS (connection status and contact), which feed
// the node machine.
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { defaults } from '../base/defaults.ts';
import { jsOptions } from '../nats/connect.ts';
import { watchContact } from '../nats/probe.ts';
import type { Log } from './log.ts';
import type { WiredNode } from './node.wiring.ts';

/**
 * A drain request, an application's stop and (with `signals`: the node owns the process) SIGTERM and SIGINT drain
 * the node; a second signal exits at once (a repeated request does not). `dispose` removes the signal listeners.
 */
export function stopRequests(
  node: WiredNode,
  log: Log,
  options: { signals: boolean },
): { request: (why: string) => void; dispose: () => void } {
  let signals = 0;
  let draining = false;
  const onSignal = (why: string, signal: boolean) => {
    if (signal) signals++;
    if (!signal && draining) return;
    draining = true;
    if (signals > 1) {
      log(`${why} again: exiting without draining`);
      process.exit(1);
    }
    log(`${why}: draining`);
    node.actor.send({ type: 'drain' });
  };
  const onTerm = () => onSignal('SIGTERM', true);
  const onInt = () => onSignal('SIGINT', true);
  if (options.signals) {
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  }
  return {
    request: (why) => onSignal(why, false),
    dispose: () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
    },
  };
}

/** Calls `fn(false)` on each disconnect and `fn(true)` on each reconnect. */
function followConnection(nc: NatsConnection, fn: (up: boolean) => void): void {
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') fn(false);
      else if (s.type === 'reconnect') fn(true);
    }
  })();
}

/**
 * Connection status feeds the node machine; reconnect forever is set in connect.ts. The link is up only when
 * connected and in contact (a blackholed connection looks connected for seconds). Returns the stop function.
 */
export function followLink(
  nc: NatsConnection,
  deps: { viaLeaf: boolean; log: Log; link: { connected: boolean }; node: WiredNode; publisher: { resend(): void } },
): () => void {
  const { viaLeaf, log, link, node, publisher } = deps;
  let natsUp = true;
  let inContact = true;
  const onConnection = () => {
    if (link.connected === (natsUp && inContact)) return;
    link.connected = natsUp && inContact;
    node.connection(link.connected);
    if (link.connected) publisher.resend();
  };
  followConnection(nc, (up) => ((natsUp = up), onConnection()));
  return watchContact(nc, {
    timeoutMs: defaults.contactTimeoutMs,
    everyMs: defaults.contactCheckMs,
    // Behind a leaf node the link that matters is the leaf's to the core: a JetStream round trip crosses it.
    roundTrip: viaLeaf
      ? async () => (await jetstreamManager(nc, jsOptions(nc, { timeout: defaults.contactTimeoutMs, checkAPI: false }))).getAccountInfo()
      : undefined,
    onChange: (fresh) => {
      log(
        fresh
          ? 'contact with the nats-server regained'
          : `no round trip to the nats-server for ${defaults.contactTimeoutMs} ms: suspending`,
      );
      inContact = fresh;
      onConnection();
    },
  });
}
