/**
 * The phase machine's vocabulary: state, the events fed into it and the commands it
 * asks the runner to carry out. All plain data, so transitions can be compared with
 * deepEqual and logged as they are.
 */
import type { Path } from '../events.ts'

export type Phase = 'joining' | 'ready' | 'shutting-down'
export type Role = 'public' | 'private'

/**
 * resolving: asking the DHT for providers; connecting: dialing a provider;
 * punching: connected over the relay, waiting a short time for round 1's direct path;
 * direct / relayed: live on that path; failed: waiting to retry.
 */
export type TunnelStatus = 'resolving' | 'connecting' | 'punching' | 'direct' | 'relayed' | 'failed'

export interface TunnelState {
  id: string
  service: string
  /** Set for `--tunnel PEER:...`; by-name tunnels take providers from the DHT. */
  fixedPeer?: string
  status: TunnelStatus
  providers: string[]
  /** Index into providers of the one being dialed or used. */
  providerIndex: number
  peer?: string
  /** Consecutive failed rounds, for backoff; reset once live. */
  failures: number
  /**
   * It was live and lost its path (roaming, a dead connection): the user's connections
   * are stalled already, so the next path goes live at once, without waiting for a punch
   * round (punching goes on behind it). Cleared once live.
   */
  recovering?: boolean
}

/**
 * Hole punching, per peer: punching (a round in flight) -> direct, or waiting (a round
 * failed; tunnels fell back to the relay, another round is scheduled) -> gave-up after
 * the last round.
 */
export interface PunchState {
  status: 'punching' | 'waiting' | 'direct' | 'gave-up'
  attempt: number
}

export interface BootstrapState {
  connected: boolean
  failures: number
}

/**
 * One relay (by its peer id) a private node reserves a slot on. reserving: a reservation in
 * flight; reserved: held; backoff: it failed or was lost, retried when its timer fires;
 * idle: may be tried again (its failures still count for the next backoff).
 */
export interface RelaySlot {
  status: 'reserving' | 'reserved' | 'backoff' | 'idle'
  failures: number
}

export interface State {
  phase: Phase
  role: Role
  /** Why the node has its role, in words (`--role public`, `reachable at ...`): for status. */
  roleReason: string
  bootstraps: Record<string, BootstrapState>
  /** Private nodes only: relay slots by relay peer id; at most MAX_RELAY_RESERVATIONS reserving or reserved. */
  relays: Record<string, RelaySlot>
  /** Relays we may reserve on, best first (connected bootstraps, then relays they vouch for): the runner keeps it current. */
  relayCandidates: string[]
  /** `--relay-mode off`: never reserve a relay slot; publish without one. */
  relayOff: boolean
  services: string[]
  tunnels: Record<string, TunnelState>
  punches: Record<string, PunchState>
}

export type Event =
  | { type: 'start' }
  | { type: 'bootstrap-connected', addr: string }
  | { type: 'bootstrap-dial-failed', addr: string, error: string }
  | { type: 'bootstrap-disconnected', addr: string }
  | { type: 'relay-candidates', relays: string[] }
  | { type: 'relay-reserved', relay: string }
  | { type: 'relay-failed', relay: string, error: string }
  | { type: 'relay-lost', relay: string }
  | { type: 'republish-due' }
  /** A connected peer serves the DHT now (it connected, or turned public): our records should reach it. */
  | { type: 'dht-server-connected' }
  | { type: 'retry-bootstrap', addr: string }
  | { type: 'retry-relay', relay: string }
  | { type: 'resolved', tunnel: string, providers: string[] }
  | { type: 'resolve-failed', tunnel: string, error: string }
  | { type: 'retry-tunnel', tunnel: string }
  | { type: 'connected', tunnel: string, peer: string, path: Path }
  | { type: 'connect-failed', tunnel: string, peer: string, error: string }
  | { type: 'peer-path', peer: string, path: Path | 'none' }
  | { type: 'upgrade-wait-over', tunnel: string }
  | { type: 'stream-failed', tunnel: string, error: string }
  | { type: 'punch-succeeded', peer: string, attempt: number }
  | { type: 'punch-failed', peer: string, attempt: number, error: string }
  | { type: 'retry-punch', peer: string }
  /** Mid-round: the candidates say round 1 will likely fail (holepunch/prospect.ts); tunnels stop waiting for it. */
  | { type: 'punch-unpromising', peer: string, reason: string }
  /** The reach probe (roles/reachability.ts) decided: the node is (no longer) publicly reachable. */
  | { type: 'role-changed', role: Role, reason: string }
  | { type: 'shutdown' }

export type Command =
  | { type: 'dial-bootstrap', addr: string }
  | { type: 'reserve-relay', relay: string }
  | { type: 'publish' }
  | { type: 'resolve', tunnel: string, service: string, attempt: number }
  | { type: 'connect', tunnel: string, peer: string }
  | { type: 'punch', peer: string, attempt: number }
  | { type: 'activate', tunnel: string, peer: string, path: Path }
  | { type: 'deactivate', tunnel: string, reason: string }
  /** Feed `event` back after `ms` (the runner adds jitter when `jitter` is set); a new schedule under the same key replaces the old. */
  | { type: 'schedule', key: string, ms: number, jitter: boolean, event: Event }
  | { type: 'cancel', key: string }
  | { type: 'stop' }

/** Events by the sub-machine that handles them (machine.ts hands each to its reducer). */
export type BootstrapEvent = Extract<Event, { type: 'start' | 'bootstrap-connected' | 'bootstrap-dial-failed' | 'bootstrap-disconnected' | 'retry-bootstrap' }>
export type RelayEvent = Extract<Event, { type: 'relay-candidates' | 'relay-reserved' | 'relay-failed' | 'relay-lost' | 'retry-relay' }>
export type ServicesEvent = Extract<Event, { type: 'republish-due' | 'dht-server-connected' }>
export type TunnelEvent = Extract<Event, { type: 'resolved' | 'resolve-failed' | 'retry-tunnel' | 'connected' | 'connect-failed' | 'upgrade-wait-over' | 'peer-path' | 'stream-failed' }>
export type RoleEvent = Extract<Event, { type: 'role-changed' }>
export type PunchEvent = Extract<Event, { type: 'punch-succeeded' | 'punch-failed' | 'retry-punch' | 'punch-unpromising' }>

/** A transition's outcome: the next state and the commands for the runner. */
export type Result = [State, Command[]]

/** Delays the machine schedules with; tests pass small ones. */
export interface Timing {
  retryMinMs: number
  retryMaxMs: number
  bootstrapRetryMinMs: number
  bootstrapRetryMaxMs: number
  /** The bound while out of the mesh (no bootstrap connected, no relay slot held). */
  bootstrapRetryOutOfMeshMaxMs: number
  republishMs: number
  upgradeWaitMs: number
  punchRetryMs: number
  /** Before round 2 only; later rounds wait punchRetryMs, doubled each round. */
  punchQuickRetryMs: number
  punchMaxAttempts: number
}
