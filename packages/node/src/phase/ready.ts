/** Entering the ready phase: publish our services and start every waiting tunnel. */
import { publishOnReady } from './services.ts'
import { startWaitingTunnels } from './tunnels.ts'
import type { Result, State, Timing } from './types.ts'

export function enterReady (state: State, timing: Timing): Result {
  const publish = publishOnReady(state, timing)
  const [next, tunnels] = startWaitingTunnels({ ...state, phase: 'ready' })
  return [next, [...publish, ...tunnels]]
}
