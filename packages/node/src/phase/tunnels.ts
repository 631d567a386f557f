/**
 * Tunnels sub-machine: find a provider (resolve), dial it (connect), go live (activate) on
 * the direct path, or on the relay after a bounded wait for a punch (fallback), and start
 * over when a live tunnel loses its peer.
 */
import { punchOnPeerPath, startPunch } from './punch.ts'
import { backoff, putTunnel } from './state.ts'
import type { Command, Result, State, Timing, TunnelEvent, TunnelState } from './types.ts'

export function tunnelTransition (state: State, event: TunnelEvent, timing: Timing): Result {
  switch (event.type) {
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
        return [putTunnel(state, live(t, 'direct')), [
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
      return [putTunnel(state, live(t, 'relayed')), [
        { type: 'activate', tunnel: t.id, peer: t.peer, path: 'relay' }
      ]]
    }

    case 'peer-path': {
      const [afterPunch, punchCommands] = punchOnPeerPath(state, event.peer, event.path)
      let next = afterPunch
      const commands: Command[] = [...punchCommands]
      for (const t of Object.values(state.tunnels)) {
        if (t.peer !== event.peer) continue
        if (event.path === 'direct' && (t.status === 'punching' || t.status === 'relayed')) {
          next = putTunnel(next, live(t, 'direct'))
          if (t.status === 'punching') commands.push({ type: 'cancel', key: `upgrade:${t.id}` })
          commands.push({ type: 'activate', tunnel: t.id, peer: event.peer, path: 'direct' })
        } else if (event.path === 'relay' && t.status === 'direct') {
          // The direct connection went away but the relayed one is still up: keep serving,
          // and punch again behind it (a NAT mapping may have expired).
          next = putTunnel(next, { ...t, status: 'relayed' })
          commands.push({ type: 'activate', tunnel: t.id, peer: event.peer, path: 'relay' })
          const [punching, more] = startPunch(next, event.peer)
          next = punching
          commands.push(...more)
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
  }
}

/** Start every tunnel waiting to (re)start, cancelling its retry timer: the node just became ready. */
export function startWaitingTunnels (state: State): Result {
  let next = state
  const commands: Command[] = []
  for (const t of Object.values(state.tunnels)) {
    if (t.status !== 'failed') continue
    const [after, more] = startTunnel(next, t)
    next = after
    commands.push({ type: 'cancel', key: `retry:${t.id}` }, ...more)
  }
  return [next, commands]
}

/**
 * A tunnel's peer is reachable over the relay only. Punch (once per peer) and wait a bounded
 * time for the direct path; if punching already failed for this peer, go live on the relay now.
 */
function onRelayed (state: State, t: TunnelState, peer: string, timing: Timing): Result {
  const punch = state.punches[peer]
  if (punch?.status === 'waiting' || punch?.status === 'gave-up') {
    return [putTunnel(state, live(t, 'relayed')), [{ type: 'activate', tunnel: t.id, peer, path: 'relay' }]]
  }
  if (t.recovering === true) {
    const [next, punchCommands] = startPunch(putTunnel(state, live(t, 'relayed')), peer)
    return [next, [{ type: 'activate', tunnel: t.id, peer, path: 'relay' }, ...punchCommands]]
  }
  const waiting = putTunnel(state, { ...t, status: 'punching' })
  const [next, punchCommands] = startPunch(waiting, peer)
  return [next, [{
    type: 'schedule', key: `upgrade:${t.id}`, ms: timing.upgradeWaitMs, jitter: false,
    event: { type: 'upgrade-wait-over', tunnel: t.id }
  }, ...punchCommands]]
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
  const [next, more] = startTunnel(state, { ...t, status: 'failed', recovering: true })
  return [next, [...commands, ...more]]
}

/** The tunnel as it goes live on `status`'s path: no failures, no longer recovering. */
function live (t: TunnelState, status: 'relayed' | 'direct'): TunnelState {
  const { recovering: _done, ...rest } = t
  return { ...rest, status, failures: 0 }
}
