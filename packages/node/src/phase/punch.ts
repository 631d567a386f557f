/**
 * Punching sub-machine, per peer: rounds of hole punching behind a relayed connection,
 * retried with backoff up to timing.punchMaxAttempts, dropped when the peer goes away.
 */
import type { Path } from '../events.ts'
import { dropPunch, putPunch, putTunnel } from './state.ts'
import type { Command, PunchEvent, Result, State, Timing } from './types.ts'

export function punchTransition (state: State, event: PunchEvent, timing: Timing): Result {
  switch (event.type) {
    case 'punch-succeeded': {
      const punch = state.punches[event.peer]
      if (punch?.status !== 'punching') return [state, []]
      // Tunnels move when the direct connection shows up as a peer-path event.
      return [putPunch(state, event.peer, { status: 'direct', attempt: event.attempt }), [{ type: 'cancel', key: `punch:${event.peer}` }]]
    }

    case 'punch-unpromising': {
      // The round goes on (a full-cone or public side may still let it through); the tunnels stop waiting for it.
      if (state.punches[event.peer]?.status !== 'punching') return [state, []]
      return goLiveOnRelay(state, event.peer)
    }

    case 'punch-failed': {
      const punch = state.punches[event.peer]
      if (punch?.status !== 'punching') return [state, []]
      // The first failed round is enough to stop waiting: serve on the relay now, keep trying behind it.
      const [relayed, commands] = goLiveOnRelay(state, event.peer)
      let next = relayed
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
  }
}

/** Every tunnel to `peer` still waiting for a punch goes live on the relay. */
function goLiveOnRelay (state: State, peer: string): Result {
  const commands: Command[] = []
  let next = state
  for (const t of Object.values(state.tunnels)) {
    if (t.peer !== peer || t.status !== 'punching') continue
    next = putTunnel(next, { ...t, status: 'relayed', failures: 0 })
    commands.push({ type: 'cancel', key: `upgrade:${t.id}` }, { type: 'activate', tunnel: t.id, peer, path: 'relay' })
  }
  return [next, commands]
}

/** First round of punching to a peer, unless one is in flight already. */
export function startPunch (state: State, peer: string): Result {
  if (state.punches[peer]?.status === 'punching') return [state, []]
  return [putPunch(state, peer, { status: 'punching', attempt: 1 }), [{ type: 'punch', peer, attempt: 1 }]]
}

/** The peer's best path changed: a direct path ends punching, no path at all forgets the peer. */
export function punchOnPeerPath (state: State, peer: string, path: Path | 'none'): Result {
  const punch = state.punches[peer]
  if (punch == null) return [state, []]
  if (path === 'none') {
    return [dropPunch(state, peer), [{ type: 'cancel', key: `punch:${peer}` }]]
  }
  if (path === 'direct' && punch.status !== 'direct') {
    return [putPunch(state, peer, { status: 'direct', attempt: punch.attempt }), [{ type: 'cancel', key: `punch:${peer}` }]]
  }
  return [state, []]
}
