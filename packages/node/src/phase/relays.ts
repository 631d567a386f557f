/**
 * Relay sub-machine (private nodes): hold reservations on up to MAX_RELAY_RESERVATIONS
 * distinct relays, taken from the candidates the runner reports (connected bootstraps
 * first, then relays they vouch for). A relay that fails or is lost waits out a backoff
 * (a lost one is tried again at once: it may only have restarted) while the free slot goes
 * to the next candidate. Every new reservation republishes, so provider records carry a
 * circuit through each relay held.
 */
import { MAX_RELAY_RESERVATIONS } from '../constants.ts'
import { enterReady } from './ready.ts'
import { publishOnRelay } from './services.ts'
import { backoff } from './state.ts'
import type { Command, RelayEvent, RelaySlot, Result, State, Timing } from './types.ts'

export function relayTransition (state: State, event: RelayEvent, timing: Timing): Result {
  if (state.role === 'public' || state.relayOff) return [state, []]
  switch (event.type) {
    case 'relay-candidates': {
      const candidates = new Set(event.relays)
      const commands: Command[] = []
      // Forget relays no longer known unless a reservation is held or in flight there.
      const relays: Record<string, RelaySlot> = {}
      for (const [relay, slot] of Object.entries(state.relays)) {
        if (candidates.has(relay) || slot.status === 'reserving' || slot.status === 'reserved') relays[relay] = slot
        else if (slot.status === 'backoff') commands.push({ type: 'cancel', key: relayKey(relay) })
      }
      const [next, more] = fill({ ...state, relays, relayCandidates: [...candidates] })
      return [next, [...commands, ...more]]
    }

    case 'relay-reserved': {
      const slot = state.relays[event.relay]
      if (slot?.status !== 'reserving') return [state, []]
      const next = putRelay(state, event.relay, { status: 'reserved', failures: 0 })
      // The mesh is reachable through this relay even with every bootstrap gone.
      if (next.phase === 'joining') return enterReady(next, timing)
      return [next, publishOnRelay(next)]
    }

    case 'relay-failed':
    case 'relay-lost': {
      const slot = state.relays[event.relay]
      const lost = event.type === 'relay-lost'
      if (slot == null || slot.status !== (lost ? 'reserved' : 'reserving')) return [state, []]
      const failures = slot.failures + 1
      let next = putRelay(state, event.relay, { status: 'backoff', failures })
      if (next.phase === 'ready' && !inMesh(next)) next = { ...next, phase: 'joining' }
      const retry: Command = {
        type: 'schedule',
        key: relayKey(event.relay),
        ms: lost ? 0 : backoff(failures, timing.retryMinMs, timing.retryMaxMs),
        jitter: !lost,
        event: { type: 'retry-relay', relay: event.relay }
      }
      const [filled, more] = fill(next)
      return [filled, [retry, ...more]]
    }

    case 'retry-relay': {
      const slot = state.relays[event.relay]
      if (slot?.status !== 'backoff') return [state, []]
      return fill(putRelay(state, event.relay, { ...slot, status: 'idle' }))
    }
  }
}

/** Reserve on the best candidates not yet used until MAX_RELAY_RESERVATIONS are held or in flight. */
export function fill (state: State): Result {
  if (state.role === 'public' || state.relayOff || state.phase === 'shutting-down') return [state, []]
  let next = state
  const commands: Command[] = []
  let active = Object.values(state.relays).filter(s => s.status === 'reserving' || s.status === 'reserved').length
  for (const relay of state.relayCandidates) {
    if (active >= MAX_RELAY_RESERVATIONS) break
    const slot = next.relays[relay]
    if (slot != null && slot.status !== 'idle') continue
    next = putRelay(next, relay, { status: 'reserving', failures: slot?.failures ?? 0 })
    commands.push({ type: 'reserve-relay', relay })
    active++
  }
  return [next, commands]
}

/** A public node is the mesh itself; a private one is in it while a bootstrap is connected or a relay slot is held. */
export function inMesh (state: State): boolean {
  return state.role === 'public' || Object.values(state.bootstraps).some(b => b.connected) || hasReservation(state)
}

export function hasReservation (state: State): boolean {
  return Object.values(state.relays).some(s => s.status === 'reserved')
}

/** One word for status: off, none, reserving (nothing held yet) or reserved (at least one held). */
export function relaySummary (state: State): 'off' | 'none' | 'reserving' | 'reserved' {
  if (state.relayOff) return 'off'
  const slots = Object.values(state.relays)
  if (slots.some(s => s.status === 'reserved')) return 'reserved'
  return slots.some(s => s.status === 'reserving') ? 'reserving' : 'none'
}

function putRelay (state: State, relay: string, slot: RelaySlot): State {
  return { ...state, relays: { ...state.relays, [relay]: slot } }
}

function relayKey (relay: string): string {
  return `relay:${relay}`
}
