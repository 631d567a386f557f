/**
 * The asker's side of `/punchgate/reach/1.0.0` (wire.ts): "can you reach me on these TCP
 * ports?", asked of a public node we are directly connected to. The answer names the IP it
 * dialed (ours, as it sees us) and which ports connected.
 */
import type { PeerId } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { REACH_MAX_PORTS, REACH_PROTOCOL, REACH_TIMEOUT_MS } from '../constants.ts'
import { ProtocolError, ReachRefusedError } from '../errors.ts'
import { decodeAnswer, encodeRequest, frames, isPort, type ReachAnswer } from './wire.ts'

export type { ReachAnswer, ReachRefusal } from './wire.ts'

/**
 * Asks `peer` to dial us back on `ports` (1 to REACH_MAX_PORTS TCP listen ports). Rejects with
 * ReachRefusedError when it refuses (asked too soon, busy, not a direct connection), and
 * with the stream's error when it does not speak the protocol or goes away.
 */
export async function askReach (swarm: Libp2p, peer: PeerId, ports: number[], signal: AbortSignal = AbortSignal.timeout(REACH_TIMEOUT_MS)): Promise<ReachAnswer> {
  if (ports.length < 1 || ports.length > REACH_MAX_PORTS || !ports.every(isPort) || new Set(ports).size !== ports.length) {
    throw new ProtocolError(`reach: ask for 1 to ${REACH_MAX_PORTS} distinct ports, not ${JSON.stringify(ports)}`)
  }
  const stream = await swarm.dialProtocol(peer, REACH_PROTOCOL, { signal })
  let answer: ReturnType<typeof decodeAnswer>
  try {
    const lp = frames(stream)
    await lp.write(encodeRequest(ports), { signal })
    answer = decodeAnswer((await lp.read({ signal })).subarray(), ports)
    await lp.unwrap().close({ signal }).catch(() => {})
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
  if ('error' in answer) throw new ReachRefusedError(answer.error)
  return answer
}
