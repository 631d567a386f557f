/** Small pure helpers the sub-machines share: copy-on-write updates of State, and backoff. */
import type { PunchState, State, TunnelState } from './types.ts'

/** Exponential backoff: min * 2^failures, capped. The runner adds jitter. */
export function backoff (failures: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1))
}

export function putTunnel (state: State, tunnel: TunnelState): State {
  return { ...state, tunnels: { ...state.tunnels, [tunnel.id]: tunnel } }
}

export function putPunch (state: State, peer: string, punch: PunchState): State {
  return { ...state, punches: { ...state.punches, [peer]: punch } }
}

export function dropPunch (state: State, peer: string): State {
  const { [peer]: _dropped, ...punches } = state.punches
  return { ...state, punches }
}
