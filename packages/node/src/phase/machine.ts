/**
 * The pure reducer: (state, event) -> [state, commands]. No I/O, no clocks, no
 * randomness: the runner executes the commands and feeds results back as events.
 */
import {
  BOOTSTRAP_RETRY_MAX_MS, BOOTSTRAP_RETRY_MIN_MS, DIRECT_UPGRADE_WAIT_MS, PUNCH_MAX_ATTEMPTS,
  PUNCH_QUICK_RETRY_MS, PUNCH_RETRY_MS, REPUBLISH_INTERVAL_MS, RETRY_MAX_MS, RETRY_MIN_MS
} from '../constants.ts'
import type { Command, Event, PunchState, State, TunnelState } from './types.ts'

export interface Timing {
  retryMinMs: number
  retryMaxMs: number
  bootstrapRetryMinMs: number
  bootstrapRetryMaxMs: number
  republishMs: number
  upgradeWaitMs: number
  punchRetryMs: number
  /** Before round 2 only; later rounds wait punchRetryMs, doubled each round. */
  punchQuickRetryMs: number
  punchMaxAttempts: number
}

export const DEFAULT_TIMING: Timing = {
  retryMinMs: RETRY_MIN_MS,
  retryMaxMs: RETRY_MAX_MS,
  bootstrapRetryMinMs: BOOTSTRAP_RETRY_MIN_MS,
  bootstrapRetryMaxMs: BOOTSTRAP_RETRY_MAX_MS,
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
    role: init.bootstraps.length === 0 ? 'public' : 'private',
    bootstraps: Object.fromEntries(init.bootstraps.map(addr => [addr, { connected: false, failures: 0 }])),
    relay: init.relayOff === true ? 'off' : 'none',
    relayFailures: 0,
    services: init.services,
    tunnels,
    punches: {}
  }
}

/** Exponential backoff: min * 2^failures, capped. The runner adds jitter. */
export function backoff (failures: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1))
}

type Result = [State, Command[]]

export function transition (state: State, event: Event, timing: Timing = DEFAULT_TIMING): Result {
  if (state.phase === 'shutting-down') {
    return [state, []]
  }

  switch (event.type) {
    case 'start': {
      if (state.role === 'public') {
        return enterReady(state, timing)
      }
      return [state, Object.keys(state.bootstraps).map(addr => ({ type: 'dial-bootstrap', addr }))]
    }

    case 'bootstrap-connected': {
      const bootstraps = { ...state.bootstraps, [event.addr]: { connected: true, failures: 0 } }
      let next: State = { ...state, bootstraps }
      const commands: Command[] = []
      if (next.relay === 'none') {
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
        phase: anyConnected ? state.phase : 'joining'
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
      // Publish again: the provider record now carries the relayed address peers need.
      return [next, next.services.length > 0 ? [{ type: 'publish' }] : []]
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

    case 'republish-due': {
      return [state, [
        { type: 'publish' },
        { type: 'schedule', key: 'republish', ms: timing.republishMs, jitter: false, event: { type: 'republish-due' } }
      ]]
    }

    case 'resolved': {
      const t = state.tunnels[event.tunnel]
      if (t == null || t.status !== 'resolving') return [state, []]
      if (event.providers.length === 0) {
        return failTunnel(state, t, timing)
      }
      return connectTo(state, { ...t, providers: event.providers, providerIndex: 0 })
    }

    case 'resolve-failed': {
      const t = state.tunnels[event.tunnel]
      if (t == null || t.status !== 'resolving') return [state, []]
      return failTunnel(state, t, timing)
    }

    case 'retry-tunnel': {
      const t = state.tunnels[event.tunnel]
      if (t == null || t.status !== 'failed' || state.phase !== 'ready') return [state, []]
      return startTunnel(state, t)
    }

    case 'connected': {
      const t = state.tunnels[event.tunnel]
      if (t == null || t.status !== 'connecting' || t.peer !== event.peer) return [state, []]
      if (event.path === 'direct') {
        return [putTunnel(state, { ...t, status: 'direct', failures: 0 }), [
          { type: 'activate', tunnel: t.id, peer: event.peer, path: 'direct' }
        ]]
      }
      return onRelayed(state, t, event.peer, timing)
    }

    case 'connect-failed': {
      const t = state.tunnels[event.tunnel]
      if (t == null || t.status !== 'connecting' || t.peer !== event.peer) return [state, []]
      const nextIndex = t.providerIndex + 1
      if (nextIndex < t.providers.length) {
        return connectTo(state, { ...t, providerIndex: nextIndex })
      }
      return failTunnel(state, t, timing)
    }

    case 'upgrade-wait-over': {
      const t = state.tunnels[event.tunnel]
      if (t == null || t.status !== 'punching' || t.peer == null) return [state, []]
      return [putTunnel(state, { ...t, status: 'relayed', failures: 0 }), [
        { type: 'activate', tunnel: t.id, peer: t.peer, path: 'relay' }
      ]]
    }

    case 'punch-succeeded': {
      const punch = state.punches[event.peer]
      if (punch?.status !== 'punching') return [state, []]
      // Tunnels move when the direct connection shows up as a peer-path event.
      return [putPunch(state, event.peer, { status: 'direct', attempt: event.attempt }), [{ type: 'cancel', key: `punch:${event.peer}` }]]
    }

    case 'punch-failed': {
      const punch = state.punches[event.peer]
      if (punch?.status !== 'punching') return [state, []]
      const commands: Command[] = []
      let next = state
      // The first failed round is enough to stop waiting: serve on the relay now, keep trying behind it.
      for (const t of Object.values(state.tunnels)) {
        if (t.peer !== event.peer || t.status !== 'punching') continue
        next = putTunnel(next, { ...t, status: 'relayed', failures: 0 })
        commands.push({ type: 'cancel', key: `upgrade:${t.id}` }, { type: 'activate', tunnel: t.id, peer: event.peer, path: 'relay' })
      }
      if (event.attempt >= timing.punchMaxAttempts) {
        return [putPunch(next, event.peer, { status: 'gave-up', attempt: event.attempt }), commands]
      }
      next = putPunch(next, event.peer, { status: 'waiting', attempt: event.attempt })
      commands.push({
        type: 'schedule',
        key: `punch:${event.peer}`,
        // Round 2 comes quickly: a lost first round must not decide the path. Then 5 s, 10 s, ...
        ms: event.attempt === 1 ? timing.punchQuickRetryMs : timing.punchRetryMs * 2 ** (event.attempt - 2),
        jitter: true,
        event: { type: 'retry-punch', peer: event.peer }
      })
      return [next, commands]
    }

    case 'retry-punch': {
      const punch = state.punches[event.peer]
      if (punch?.status !== 'waiting') return [state, []]
      if (!Object.values(state.tunnels).some(t => t.peer === event.peer && t.status === 'relayed')) {
        return [dropPunch(state, event.peer), []]
      }
      const attempt = punch.attempt + 1
      return [putPunch(state, event.peer, { status: 'punching', attempt }), [{ type: 'punch', peer: event.peer, attempt }]]
    }

    case 'peer-path': {
      let next = state
      const commands: Command[] = []
      const punch = state.punches[event.peer]
      if (event.path === 'none' && punch != null) {
        next = dropPunch(next, event.peer)
        commands.push({ type: 'cancel', key: `punch:${event.peer}` })
      } else if (event.path === 'direct' && punch != null && punch.status !== 'direct') {
        next = putPunch(next, event.peer, { status: 'direct', attempt: punch.attempt })
        commands.push({ type: 'cancel', key: `punch:${event.peer}` })
      }
      for (const t of Object.values(state.tunnels)) {
        if (t.peer !== event.peer) continue
        if (event.path === 'direct' && (t.status === 'punching' || t.status === 'relayed')) {
          next = putTunnel(next, { ...t, status: 'direct', failures: 0 })
          if (t.status === 'punching') commands.push({ type: 'cancel', key: `upgrade:${t.id}` })
          commands.push({ type: 'activate', tunnel: t.id, peer: event.peer, path: 'direct' })
        } else if (event.path === 'relay' && t.status === 'direct') {
          // The direct connection went away but the relayed one is still up: keep serving,
          // and punch again behind it (a NAT mapping may have expired).
          next = putTunnel(next, { ...t, status: 'relayed' })
          commands.push({ type: 'activate', tunnel: t.id, peer: event.peer, path: 'relay' })
          if (next.punches[event.peer]?.status !== 'punching') {
            next = putPunch(next, event.peer, { status: 'punching', attempt: 1 })
            commands.push({ type: 'punch', peer: event.peer, attempt: 1 })
          }
        } else if (event.path === 'none' && (t.status === 'punching' || t.status === 'relayed' || t.status === 'direct')) {
          const [after, more] = reconnect(next, t, 'peer disconnected')
          next = after
          commands.push(...more)
        }
      }
      return [next, commands]
    }

    case 'stream-failed': {
      const t = state.tunnels[event.tunnel]
      if (t == null || (t.status !== 'direct' && t.status !== 'relayed')) return [state, []]
      return reconnect(state, t, event.error)
    }

    case 'shutdown': {
      return [{ ...state, phase: 'shutting-down' }, [{ type: 'stop' }]]
    }

    default: {
      const unreachable: never = event
      return unreachable
    }
  }
}

function putPunch (state: State, peer: string, punch: PunchState): State {
  return { ...state, punches: { ...state.punches, [peer]: punch } }
}

function dropPunch (state: State, peer: string): State {
  const { [peer]: _dropped, ...punches } = state.punches
  return { ...state, punches }
}

/**
 * A tunnel's peer is reachable over the relay only. Punch (once per peer) and wait a bounded
 * time for the direct path; if punching already failed for this peer, go live on the relay now.
 */
function onRelayed (state: State, t: TunnelState, peer: string, timing: Timing): Result {
  const punch = state.punches[peer]
  if (punch?.status === 'waiting' || punch?.status === 'gave-up') {
    return [putTunnel(state, { ...t, status: 'relayed', failures: 0 }), [{ type: 'activate', tunnel: t.id, peer, path: 'relay' }]]
  }
  let next = putTunnel(state, { ...t, status: 'punching' })
  const commands: Command[] = [{
    type: 'schedule', key: `upgrade:${t.id}`, ms: timing.upgradeWaitMs, jitter: false,
    event: { type: 'upgrade-wait-over', tunnel: t.id }
  }]
  if (punch?.status !== 'punching') {
    next = putPunch(next, peer, { status: 'punching', attempt: 1 })
    commands.push({ type: 'punch', peer, attempt: 1 })
  }
  return [next, commands]
}

function putTunnel (state: State, tunnel: TunnelState): State {
  return { ...state, tunnels: { ...state.tunnels, [tunnel.id]: tunnel } }
}

function enterReady (state: State, timing: Timing): Result {
  let next: State = { ...state, phase: 'ready' }
  const commands: Command[] = []
  // A private node publishes once its relay slot is reserved (see relay-reserved), so
  // that its provider record carries an address peers behind other NATs can reach.
  if (state.services.length > 0 && (state.role === 'public' || state.relay === 'reserved' || state.relay === 'off')) {
    commands.push({ type: 'publish' })
  }
  if (state.services.length > 0) {
    commands.push({ type: 'schedule', key: 'republish', ms: timing.republishMs, jitter: false, event: { type: 'republish-due' } })
  }
  for (const t of Object.values(state.tunnels)) {
    if (t.status !== 'failed') continue
    const [after, more] = startTunnel(next, t)
    next = after
    commands.push({ type: 'cancel', key: `retry:${t.id}` }, ...more)
  }
  return [next, commands]
}

function startTunnel (state: State, t: TunnelState): Result {
  if (t.fixedPeer != null) {
    return connectTo(state, { ...t, providers: [t.fixedPeer], providerIndex: 0 })
  }
  const { peer: _previous, ...rest } = t
  return [putTunnel(state, { ...rest, status: 'resolving', providers: [], providerIndex: 0 }), [
    { type: 'resolve', tunnel: t.id, service: t.service, attempt: t.failures + 1 }
  ]]
}

function connectTo (state: State, t: TunnelState): Result {
  const peer = t.providers[t.providerIndex]
  if (peer == null) return [state, []]
  return [putTunnel(state, { ...t, status: 'connecting', peer }), [{ type: 'connect', tunnel: t.id, peer }]]
}

function failTunnel (state: State, t: TunnelState, timing: Timing): Result {
  const failures = t.failures + 1
  const { peer: _dropped, ...rest } = t
  return [putTunnel(state, { ...rest, status: 'failed', failures }), [{
    type: 'schedule',
    key: `retry:${t.id}`,
    ms: backoff(failures, timing.retryMinMs, timing.retryMaxMs),
    jitter: true,
    event: { type: 'retry-tunnel', tunnel: t.id }
  }]]
}

/** A live tunnel lost its peer: take it offline and find a provider again at once. */
function reconnect (state: State, t: TunnelState, reason: string): Result {
  const commands: Command[] = [{ type: 'deactivate', tunnel: t.id, reason }]
  if (t.status === 'punching') commands.push({ type: 'cancel', key: `upgrade:${t.id}` })
  const [next, more] = startTunnel(state, { ...t, status: 'failed' })
  return [next, [...commands, ...more]]
}
