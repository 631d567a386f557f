/**
 * The pure reducer: (state, event) -> [state, commands]. No I/O, no clocks, no
 * randomness: the runner executes the commands and feeds results back as events.
 * Each event goes to the sub-machine that owns it: bootstrap.ts (bootstraps), relays.ts
 * (relay slots), services.ts (publishing), tunnels.ts (resolve, connect, activate,
 * fallback), punch.ts (hole-punch rounds) and role.ts (public or private).
 */
import {
  BOOTSTRAP_RETRY_MAX_MS, BOOTSTRAP_RETRY_OUT_OF_MESH_MAX_MS, BOOTSTRAP_RETRY_MIN_MS, DIRECT_UPGRADE_WAIT_MS, PUNCH_MAX_ATTEMPTS,
  PUNCH_QUICK_RETRY_MS, PUNCH_RETRY_MS, REPUBLISH_INTERVAL_MS, RETRY_MAX_MS, RETRY_MIN_MS
} from '../constants.ts'
import { bootstrapTransition } from './bootstrap.ts'
import { punchTransition } from './punch.ts'
import { relayTransition } from './relays.ts'
import { roleTransition } from './role.ts'
import { servicesTransition } from './services.ts'
import { tunnelTransition } from './tunnels.ts'
import type { Event, Result, Role, State, Timing, TunnelState } from './types.ts'

export type { Timing } from './types.ts'
export { backoff } from './state.ts'

export const DEFAULT_TIMING: Timing = {
  retryMinMs: RETRY_MIN_MS,
  retryMaxMs: RETRY_MAX_MS,
  bootstrapRetryMinMs: BOOTSTRAP_RETRY_MIN_MS,
  bootstrapRetryMaxMs: BOOTSTRAP_RETRY_MAX_MS,
  bootstrapRetryOutOfMeshMaxMs: BOOTSTRAP_RETRY_OUT_OF_MESH_MAX_MS,
  republishMs: REPUBLISH_INTERVAL_MS,
  upgradeWaitMs: DIRECT_UPGRADE_WAIT_MS,
  punchRetryMs: PUNCH_RETRY_MS,
  punchQuickRetryMs: PUNCH_QUICK_RETRY_MS,
  punchMaxAttempts: PUNCH_MAX_ATTEMPTS
}

export interface InitialStateInit {
  bootstraps: string[]
  services: string[]
  tunnels: Array<{ id: string, service: string, peer?: string }>
  /** `--relay-mode off`: never reserve a relay slot; publish without one. */
  relayOff?: boolean
  /** The role at start; default: public without bootstraps, else private. */
  role?: Role
  /** Why, in words; default: from the bootstraps. */
  roleReason?: string
}

export function initialState (init: InitialStateInit): State {
  const tunnels: Record<string, TunnelState> = {}
  for (const t of init.tunnels) {
    tunnels[t.id] = {
      id: t.id,
      service: t.service,
      ...(t.peer != null ? { fixedPeer: t.peer } : {}),
      status: 'failed',
      providers: [],
      providerIndex: 0,
      failures: 0
    }
  }
  return {
    phase: 'joining',
    role: init.role ?? (init.bootstraps.length === 0 ? 'public' : 'private'),
    roleReason: init.roleReason ?? (init.bootstraps.length === 0 ? 'no --bootstrap' : '--bootstrap'),
    bootstraps: Object.fromEntries(init.bootstraps.map(addr => [addr, { connected: false, failures: 0 }])),
    relays: {},
    relayCandidates: [],
    relayOff: init.relayOff === true,
    services: init.services,
    tunnels,
    punches: {}
  }
}

export function transition (state: State, event: Event, timing: Timing = DEFAULT_TIMING): Result {
  if (state.phase === 'shutting-down') {
    return [state, []]
  }

  switch (event.type) {
    case 'start':
    case 'bootstrap-connected':
    case 'bootstrap-dial-failed':
    case 'bootstrap-disconnected':
    case 'retry-bootstrap':
      return bootstrapTransition(state, event, timing)

    case 'relay-candidates':
    case 'relay-reserved':
    case 'relay-failed':
    case 'relay-lost':
    case 'retry-relay':
      return relayTransition(state, event, timing)

    case 'republish-due':
    case 'dht-server-connected':
      return servicesTransition(state, event, timing)

    case 'resolved':
    case 'resolve-failed':
    case 'retry-tunnel':
    case 'connected':
    case 'connect-failed':
    case 'upgrade-wait-over':
    case 'peer-path':
    case 'stream-failed':
      return tunnelTransition(state, event, timing)

    case 'punch-succeeded':
    case 'punch-failed':
    case 'retry-punch':
    case 'punch-unpromising':
      return punchTransition(state, event, timing)

    case 'role-changed':
      return roleTransition(state, event, timing)

    case 'shutdown':
      return [{ ...state, phase: 'shutting-down' }, [{ type: 'stop' }]]

    default: {
      const unreachable: never = event
      return unreachable
    }
  }
}
