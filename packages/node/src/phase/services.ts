/** Services sub-machine: when to publish provider records, and republishing them. */
import type { Command, Result, ServicesEvent, State, Timing } from './types.ts'

export function servicesTransition (state: State, event: ServicesEvent, timing: Timing): Result {
  switch (event.type) {
    case 'republish-due':
      return [state, [{ type: 'publish' }, republishLater(timing)]]
    case 'dht-server-connected':
      // A public node we did not know as one (a node with --bootstrap that turned public, or
      // one that came back): publish soon, so our records sit on every public node. Keyed, so
      // a burst of them publishes once, NEW_DHT_SERVER_PUBLISH_MS after the last.
      if (state.services.length === 0 || state.phase !== 'ready') return [state, []]
      return [state, [{ type: 'schedule', key: 'republish-soon', ms: NEW_DHT_SERVER_PUBLISH_MS, jitter: false, event: { type: 'republish-due' } }]]
  }
}

/** After a new DHT server connects, the quiet time before we publish to it. */
export const NEW_DHT_SERVER_PUBLISH_MS = 2_000

/** On entering ready: publish if our record can carry a reachable address, and republish on a timer. */
export function publishOnReady (state: State, timing: Timing): Command[] {
  if (state.services.length === 0) return []
  const commands: Command[] = []
  // A private node publishes once a relay slot is reserved (relays.ts, relay-reserved), so
  // that its provider record carries an address peers behind other NATs can reach.
  if (state.role === 'public' || state.relayOff || Object.values(state.relays).some(s => s.status === 'reserved')) {
    commands.push({ type: 'publish' })
  }
  commands.push(republishLater(timing))
  return commands
}

/** A relay slot was reserved: publish again, the provider record now carries a circuit through that relay too. */
export function publishOnRelay (state: State): Command[] {
  return state.services.length > 0 ? [{ type: 'publish' }] : []
}

function republishLater (timing: Timing): Command {
  return { type: 'schedule', key: 'republish', ms: timing.republishMs, jitter: false, event: { type: 'republish-due' } }
}
