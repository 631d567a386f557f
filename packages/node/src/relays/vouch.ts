/**
 * `/punchgate/relays/1.0.0` (docs/protocol.md): a private node asks a public node it is
 * directly connected to which other public nodes it knows to be reachable, to hold its
 * second relay reservation there. The public node answers with the peers its reach probe
 * verified (reachability/, `verifiedPublicPeers()`) and nothing else, so a stranger cannot
 * get itself listed without being reachable from the public node first.
 *
 *   asker opens the stream (sends nothing)
 *   public node -> asker   { "relays": [{ "peer": "12D3...", "addrs": ["/ip4/A/tcp/P", ...] }, ...] }
 *
 * One varint-length-prefixed JSON frame of at most MAX_FRAME_BYTES, then both sides close.
 */
import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import {
  MAX_FRAME_BYTES, MAX_VOUCHED_ADDRS, MAX_VOUCHED_RELAYS, RELAYS_ASK_INTERVAL_MS, RELAYS_PROTOCOL, RELAYS_TIMEOUT_MS
} from '../constants.ts'
import { ProtocolError } from '../errors.ts'
import { usableIp, type CandidateScope } from '../holepunch/candidates.ts'
import { PeerBudget } from '../holepunch/budget.ts'
import { pathOf } from '../protocol/expose.ts'

/** A public node one of our bootstraps vouches for: its peer id and its addresses (no /p2p suffix). */
export interface VouchedRelay {
  peer: string
  addrs: string[]
}

/** Answers in all, whoever asks, per RELAYS_ASK_INTERVAL_MS: a flood of fresh peer ids still gets few. */
const ANSWERS_PER_INTERVAL = 64

export interface ServeRelaysOptions {
  /** @default RELAYS_ASK_INTERVAL_MS */
  intervalMs?: number
  /** @default RELAYS_TIMEOUT_MS */
  timeoutMs?: number
  now?: () => number
}

/**
 * On a public node: answer `/punchgate/relays/1.0.0` with `verified()` (the reach probe's
 * verified public peers), the asker left out, at most MAX_VOUCHED_RELAYS entries of
 * MAX_VOUCHED_ADDRS addresses. Only over a direct connection (a relayed asker is not
 * known to be anyone's neighbour), once per peer per interval; other requests are reset.
 */
export async function serveRelays (node: Libp2p, verified: () => VouchedRelay[] | Promise<VouchedRelay[]>, options: ServeRelaysOptions = {}): Promise<void> {
  await node.handle(RELAYS_PROTOCOL, relaysHandler(verified, options), { maxInboundStreams: 1, maxOutboundStreams: 1, runOnLimitedConnection: false })
}

/** The stream handler serveRelays registers (tests call it with a connection of their making). */
export function relaysHandler (verified: () => VouchedRelay[] | Promise<VouchedRelay[]>, options: ServeRelaysOptions = {}): (stream: Stream, connection: Pick<Connection, 'remotePeer' | 'direct' | 'remoteAddr'>) => Promise<void> {
  const intervalMs = options.intervalMs ?? RELAYS_ASK_INTERVAL_MS
  const perPeer = new PeerBudget({ limit: 1, windowMs: intervalMs, ...(options.now != null ? { now: options.now } : {}) })
  const inAll = new PeerBudget({ limit: ANSWERS_PER_INTERVAL, windowMs: intervalMs, ...(options.now != null ? { now: options.now } : {}) })
  return async (stream, connection) => {
    const asker = connection.remotePeer.toString()
    if (pathOf(connection) !== 'direct') { stream.abort(new ProtocolError('relays: ask over a direct connection')); return }
    if (!perPeer.take(asker) || !inAll.take('*')) { stream.abort(new ProtocolError('relays: asked too often')); return }
    try {
      const relays = (await verified()).filter(r => r.peer !== asker)
      await writeFrame(stream, encodeAnswer(relays), AbortSignal.timeout(options.timeoutMs ?? RELAYS_TIMEOUT_MS))
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  }
}

/** The answer frame: capped in entries and addresses, then trimmed from the end until it fits one frame. */
export function encodeAnswer (relays: VouchedRelay[]): Uint8Array {
  const list = relays.slice(0, MAX_VOUCHED_RELAYS).map(r => ({ peer: r.peer, addrs: r.addrs.slice(0, MAX_VOUCHED_ADDRS) }))
  for (;;) {
    const bytes = new TextEncoder().encode(JSON.stringify({ relays: list }))
    if (bytes.byteLength <= MAX_FRAME_BYTES) return bytes
    list.pop()
  }
}

/**
 * On a private node: ask `peer` (a bootstrap we are directly connected to) for the public
 * nodes it vouches for. Entries that are not well-formed, name us or `peer` itself, or
 * whose addresses we may not dial (holepunch/candidates.ts) are dropped.
 */
export async function askRelays (node: Libp2p, peer: PeerId, scope: CandidateScope, signal: AbortSignal = AbortSignal.timeout(RELAYS_TIMEOUT_MS)): Promise<VouchedRelay[]> {
  const stream = await node.dialProtocol(peer, RELAYS_PROTOCOL, { signal })
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    const frame = (await lp.read({ signal })).subarray()
    await stream.close().catch(() => {})
    return decodeAnswer(frame, scope, [node.peerId.toString(), peer.toString()])
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

/** Parses and filters an answer: at most MAX_VOUCHED_RELAYS usable entries, none of `exclude`. */
export function decodeAnswer (frame: Uint8Array, scope: CandidateScope, exclude: string[] = []): VouchedRelay[] {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame))
  } catch {
    throw new ProtocolError('relays: the answer is not UTF-8 JSON')
  }
  const list = (value as { relays?: unknown } | null)?.relays
  if (!Array.isArray(list)) throw new ProtocolError('relays: the answer has no "relays" list')
  const seen = new Set(exclude)
  const relays: VouchedRelay[] = []
  for (const entry of list.slice(0, MAX_VOUCHED_RELAYS) as unknown[]) {
    const peer = peerOf(entry)
    if (peer == null || seen.has(peer)) continue
    const addrs = ((entry as { addrs?: unknown }).addrs as unknown[] | undefined)
    if (!Array.isArray(addrs)) continue
    const usable = addrs.slice(0, MAX_VOUCHED_ADDRS).map(a => usableRelayAddr(a, peer, scope)).filter((a): a is string => a != null)
    if (usable.length === 0) continue
    seen.add(peer)
    relays.push({ peer, addrs: usable })
  }
  return relays
}

function peerOf (entry: unknown): string | undefined {
  const peer = (entry as { peer?: unknown } | null)?.peer
  if (typeof peer !== 'string') return undefined
  try {
    return peerIdFromString(peer).toString()
  } catch {
    return undefined
  }
}

/**
 * A vouched relay's address, as we would dial it: an IP address we may dial on a peer's word
 * with a transport after it, no relay hop (a relay must be reachable directly), and no
 * /p2p/ other than the relay's own (dropped: the peer id travels beside it).
 */
function usableRelayAddr (addr: unknown, peer: string, scope: CandidateScope): string | undefined {
  if (typeof addr !== 'string' || addr.length > 256) return undefined
  try {
    const components = multiaddr(addr).getComponents()
    const ip = components[0]
    if (ip == null || (ip.name !== 'ip4' && ip.name !== 'ip6') || ip.value == null || !usableIp(ip.value, scope)) return undefined
    if (components.some(c => c.name === 'p2p-circuit')) return undefined
    const last = components.at(-1)
    const rest = last?.name === 'p2p' ? components.slice(0, -1) : components
    if (last?.name === 'p2p' && last.value !== peer) return undefined
    if (rest.some(c => c.name === 'p2p') || rest.length < 2) return undefined
    return multiaddr(rest).toString()
  } catch {
    return undefined
  }
}

/** Writes one frame. */
async function writeFrame (stream: Stream, bytes: Uint8Array, signal: AbortSignal): Promise<void> {
  await lpStream(stream, { maxDataLength: MAX_FRAME_BYTES }).write(bytes, { signal })
}
