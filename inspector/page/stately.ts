// `shoal inspect --stately`: a button on the page that opens Stately's hosted
// inspector (stately.ai/inspect, in a new window: needs internet) and relays
// the nodes' inspection feed to it through @statelyai/inspect's browser
// inspector. The feed is already in its shapes (`@xstate.actor`, with the
// machine definition, `@xstate.snapshot`, `@xstate.event`). Nothing is sent
// anywhere until the button is pressed.
import { createBrowserInspector } from '@statelyai/inspect';
import type { ShoalInspectionEvent } from '../../node/inspection.ts';

export function statelyRelay(button: HTMLButtonElement) {
  /** The latest `@xstate.actor` of each live actor, so the hosted inspector starts with every machine. */
  const actors = new Map<string, ShoalInspectionEvent>();
  let relay: ReturnType<typeof createBrowserInspector> | null = null;
  button.hidden = false;
  button.addEventListener('click', () => {
    if (relay) return;
    relay = createBrowserInspector();
    for (const e of actors.values()) relay.adapter.send(e);
    button.textContent = 'Relaying to Stately';
    button.disabled = true;
  });
  return {
    feed(items: ShoalInspectionEvent[]): void {
      for (const e of items) {
        if (e.type === '@xstate.actor') actors.set(e.sessionId, e);
        relay?.adapter.send(e);
      }
    },
  };
}
