/**
 * Role sub-machine: the reach probe (roles/reachability.ts) says whether the node is
 * publicly reachable and the machine holds the answer. A public node is in the mesh by
 * itself and publishes records with its own address; the relay sub-machine (relays.ts)
 * rests while it is public. A private one needs a bootstrap or a relay slot to be in the
 * mesh, and relay slots to be reached.
 */
import { enterReady } from './ready.ts'
import { fill, hasReservation, inMesh } from './relays.ts'
import type { Command, RelaySlot, Result, RoleEvent, State, Timing } from './types.ts'

export function roleTransition (state: State, event: RoleEvent, timing: Timing): Result {
  if (event.role === state.role) return [{ ...state, roleReason: event.reason }, []]
  const next: State = { ...state, role: event.role, roleReason: event.reason }
  // Provider records carry the node's addresses: publish them again as they are now.
  const publish: Command[] = next.services.length > 0 ? [{ type: 'publish' }] : []
  if (event.role === 'public') {
    if (next.phase === 'joining') return enterReady(next, timing)
    return [next, publish]
  }
  // Outcomes and retries of relay slots were not heard while public: every slot but a held
  // one may be tried again at once.
  const relays: Record<string, RelaySlot> = {}
  for (const [relay, slot] of Object.entries(next.relays)) relays[relay] = slot.status === 'reserved' ? slot : { ...slot, status: 'idle' }
  const [filled, reserve] = fill({ ...next, relays })
  if (!inMesh(filled)) return [{ ...filled, phase: 'joining' }, reserve]
  // With a slot held (or none wanted) the records can carry a reachable address now; else relay-reserved publishes.
  return [filled, [...reserve, ...(hasReservation(filled) || filled.relayOff ? publish : [])]]
}
