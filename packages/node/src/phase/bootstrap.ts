/**
 * Bootstrap sub-machine: dial the bootstraps (retrying each with backoff), become ready
 * once one is connected, and, on a private node, keep a relay slot reserved.
 */
import { enterReady } from './ready.ts'
import { publishOnRelay } from './services.ts'
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
      let next: State = { ...state, bootstraps }
      const commands: Command[] = []
      if (next.relay === 'none' && next.role === 'private') {
        next = { ...next, relay: 'reserving' }
        commands.push({ type: 'reserve-relay' })
      }
      if (next.phase === 'joining') {
        const [ready, readyCommands] = enterReady(next, timing)
        return [ready, [...commands, ...readyCommands]]
      }
      return [next, commands]
    }

    case 'bootstrap-dial-failed':
    case 'bootstrap-disconnected': {
      const previous = state.bootstraps[event.addr]
      if (previous == null) return [state, []]
      const failures = previous.failures + 1
      const bootstraps = { ...state.bootstraps, [event.addr]: { connected: false, failures } }
      const anyConnected = Object.values(bootstraps).some(b => b.connected)
      const next: State = {
        ...state,
        bootstraps,
        // A public node stays in the mesh it holds itself.
        phase: anyConnected || state.role === 'public' ? state.phase : 'joining'
      }
      return [next, [{
        type: 'schedule',
        key: `bootstrap:${event.addr}`,
        ms: backoff(failures, timing.bootstrapRetryMinMs, timing.bootstrapRetryMaxMs),
        jitter: true,
        event: { type: 'retry-bootstrap', addr: event.addr }
      }]]
    }

    case 'retry-bootstrap': {
      const b = state.bootstraps[event.addr]
      if (b == null || b.connected) return [state, []]
      return [state, [{ type: 'dial-bootstrap', addr: event.addr }]]
    }

    case 'relay-reserved': {
      const next: State = { ...state, relay: 'reserved', relayFailures: 0 }
      return [next, publishOnRelay(next)]
    }

    case 'relay-failed':
    case 'relay-lost': {
      const relayFailures = state.relayFailures + 1
      return [{ ...state, relay: 'none', relayFailures }, [{
        type: 'schedule',
        key: 'relay',
        ms: event.type === 'relay-lost' ? 0 : backoff(relayFailures, timing.retryMinMs, timing.retryMaxMs),
        jitter: event.type !== 'relay-lost',
        event: { type: 'retry-relay' }
      }]]
    }

    case 'retry-relay': {
      if (state.relay !== 'none' || !Object.values(state.bootstraps).some(b => b.connected)) return [state, []]
      return [{ ...state, relay: 'reserving' }, [{ type: 'reserve-relay' }]]
    }
  }
}
