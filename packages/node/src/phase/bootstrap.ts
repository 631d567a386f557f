/**
 * Bootstrap sub-machine: dial the bootstraps (retrying each with backoff) and become ready
 * once one is connected. Relay slots are relays.ts's: the runner reports a connected
 * bootstrap as a relay candidate.
 */
import { enterReady } from './ready.ts'
import { inMesh } from './relays.ts'
import { backoff } from './state.ts'
import type { BootstrapEvent, Command, Result, State, Timing } from './types.ts'

export function bootstrapTransition (state: State, event: BootstrapEvent, timing: Timing): Result {
  switch (event.type) {
    case 'start': {
      const dials: Command[] = Object.keys(state.bootstraps).map(addr => ({ type: 'dial-bootstrap', addr }))
      if (state.role === 'public') {
        // A public node is in the mesh by itself; its bootstraps (--role public) join it to theirs.
        const [ready, commands] = enterReady(state, timing)
        return [ready, [...dials, ...commands]]
      }
      return [state, dials]
    }

    case 'bootstrap-connected': {
      const bootstraps = { ...state.bootstraps, [event.addr]: { connected: true, failures: 0 } }
      const next: State = { ...state, bootstraps }
      return next.phase === 'joining' ? enterReady(next, timing) : [next, []]
    }

    case 'bootstrap-dial-failed':
    case 'bootstrap-disconnected': {
      const previous = state.bootstraps[event.addr]
      if (previous == null) return [state, []]
      const failures = previous.failures + 1
      const bootstraps = { ...state.bootstraps, [event.addr]: { connected: false, failures } }
      const kept: State = { ...state, bootstraps }
      // A public node, or a relay slot still held, keeps the node in the mesh (relays.ts);
      // out of it, the node is of no use until a bootstrap answers: redial sooner.
      const member = inMesh(kept)
      const next: State = member ? kept : { ...kept, phase: 'joining' }
      const maxMs = member ? timing.bootstrapRetryMaxMs : timing.bootstrapRetryOutOfMeshMaxMs
      return [next, [{
        type: 'schedule',
        key: `bootstrap:${event.addr}`,
        ms: backoff(failures, timing.bootstrapRetryMinMs, maxMs),
        jitter: true,
        event: { type: 'retry-bootstrap', addr: event.addr }
      }]]
    }

    case 'retry-bootstrap': {
      const b = state.bootstraps[event.addr]
      if (b == null || b.connected) return [state, []]
      return [state, [{ type: 'dial-bootstrap', addr: event.addr }]]
    }
  }
}
