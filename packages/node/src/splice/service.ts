/**
 * `/punchgate/splice/1.0.0` (docs/splice.md): how two private peers get
 * a spliced TCP path through a public node that copies bytes without opening them.
 *
 *   A -> relay   { peer: B }
 *   relay -> B   { from: A, token, port }      B -> relay { accepted: true }
 *   relay -> A   { token, port }
 *   A, B         connect to relay:port, send their 32-byte token; the relay joins the two
 *                sockets; A upgrades its socket as an outbound libp2p connection to B
 *                (TLS client), B its socket as an inbound one (TLS server).
 */
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId, Stream, Upgrader } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { SocketConnection } from './socket-connection.ts'
import type { Splicer } from './splicer.ts'
import { parseSpliceTicket } from './offer.ts'
import { MAX_FRAME_BYTES, SPLICE_PROTOCOL, SPLICE_TIMEOUT_MS } from '../constants.ts'

async function send (stream: Stream, value: unknown, signal: AbortSignal): Promise<void> {
  await lpStream(stream, { maxDataLength: MAX_FRAME_BYTES }).write(new TextEncoder().encode(JSON.stringify(value)), { signal })
}

async function receive (stream: Stream, signal: AbortSignal): Promise<Record<string, unknown>> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
  const value: unknown = JSON.parse(new TextDecoder().decode((await lp.read({ signal })).subarray()))
  lp.unwrap()
  if (typeof value !== 'object' || value == null) throw new Error('splice: frame is not an object')
  return value as Record<string, unknown>
}

/**
 * Connections made over a splice, known by their timeline: libp2p's Connection takes its
 * socket connection's timeline object as it is, before 'connection:open' fires. A circuit
 * between two trusted peers carries no limits either (relay.ts), so `limits == null` does
 * not tell a splice from a circuit.
 */
const spliced = new WeakSet<object>()

export function isSpliced (connection: Connection): boolean {
  return spliced.has(connection.timeline)
}

function upgraderOf (node: Libp2p): Upgrader {
  return (node as unknown as { components: { upgrader: Upgrader } }).components.upgrader
}

/** The relay's IP address and its family, as this node reached it. */
function ipOf (addr: Multiaddr): { host: string, family: 4 | 6 } {
  const ip = addr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')
  if (ip?.value == null) throw new Error(`splice: no IP address in ${addr.toString()}`)
  return { host: ip.value, family: ip.name === 'ip6' ? 6 : 4 }
}

function hostOf (connection: Connection): string {
  return ipOf(connection.remoteAddr).host
}

/** Connects to the relay's splice port and presents the token; gives up (and closes) when `signal` aborts. */
async function dialSplice (host: string, port: number, token: Buffer, signal: AbortSignal): Promise<Socket> {
  const socket = connect({ host, port, noDelay: true })
  try {
    await once(socket, 'connect', { signal })
  } catch (err) {
    socket.destroy()
    throw signal.aborted ? new Error(`splice: no TCP connection to ${host}:${port} in time`) : err
  }
  socket.write(token)
  return socket
}

/**
 * On a public node: answer splice requests by pairing the requester with the peer it asks
 * for, when `mayPair` agrees (the relay's own rules: a reservation, `--relay-allow`);
 * without the splicer's byte and duration caps when `uncapped` says both ends are trusted.
 */
export async function serveSplices (
  node: Libp2p, splicer: Splicer, mayPair: (from: PeerId, to: PeerId) => boolean,
  uncapped: (from: PeerId, to: PeerId) => boolean = () => false, timeoutMs = SPLICE_TIMEOUT_MS
): Promise<void> {
  await node.handle(SPLICE_PROTOCOL, async (stream, connection) => {
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      const request = await receive(stream, signal)
      const target = peerIdFromString(String(request.peer))
      if (!mayPair(connection.remotePeer, target) || node.getConnections(target).length === 0) {
        await send(stream, { accepted: false, reason: 'not-allowed' }, signal)
        return
      }
      const tokens = splicer.pair({ uncapped: uncapped(connection.remotePeer, target) })
      if (tokens == null) {
        await send(stream, { accepted: false, reason: 'busy' }, signal)
        return
      }
      const [forRequester, forTarget] = tokens
      let answer: Record<string, unknown> = {}
      try {
        const offer = await node.dialProtocol(target, SPLICE_PROTOCOL, { signal })
        await send(offer, { from: connection.remotePeer.toString(), token: forTarget.toString('hex'), port: splicer.port }, signal)
        answer = await receive(offer, signal)
        await offer.close()
      } catch {
        // The peer does not speak the protocol (not Punchgate, or an older one), or went away.
      }
      if (answer.accepted !== true) {
        splicer.release(tokens)
        await send(stream, { accepted: false, reason: 'refused' }, signal)
        return
      }
      await send(stream, { accepted: true, token: forRequester.toString('hex'), port: splicer.port }, signal)
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  })
}

/** On a private node: take offers from our relays and turn each spliced socket into an inbound connection. */
export async function acceptSplices (node: Libp2p, isRelay: (peer: PeerId) => boolean, timeoutMs = SPLICE_TIMEOUT_MS): Promise<void> {
  await node.handle(SPLICE_PROTOCOL, async (stream, connection) => {
    const signal = AbortSignal.timeout(timeoutMs)
    const relay = connection.remotePeer
    if (!isRelay(relay)) { stream.abort(new Error('splice offer from a peer that is not our relay')); return }
    try {
      const offer = await receive(stream, signal)
      const from = peerIdFromString(String(offer.from))
      const ticket = parseSpliceTicket(offer)
      if (ticket == null) {
        await send(stream, { accepted: false, reason: 'bad-request' }, signal)
        await stream.close()
        return
      }
      await send(stream, { accepted: true }, signal)
      await stream.close()
      const socket = await dialSplice(hostOf(connection), ticket.port, ticket.token, signal)
      const remoteAddr = spliceAddr(connection.remoteAddr, ticket.port, relay, from)
      const maConn = new SocketConnection(socket, remoteAddr, 'inbound', node.logger.forComponent('punchgate:splice'))
      spliced.add(maConn.timeline)
      await upgraderOf(node).upgradeInbound(maConn, { signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }, { runOnLimitedConnection: false })
}

/** `/ip4/RELAY/tcp/PORT/p2p/RELAY/p2p-circuit/p2p/PEER`: where a spliced connection goes, marked as relayed. */
function spliceAddr (relayAddr: Multiaddr, port: number, relay: PeerId, peer: PeerId): Multiaddr {
  const { host, family } = ipOf(relayAddr)
  return multiaddr(`/ip${family}/${host}/tcp/${port}/p2p/${relay.toString()}/p2p-circuit/p2p/${peer.toString()}`)
}

/** On a private node: ask `relay` for a spliced path to `peer` and upgrade it as an outbound connection. */
export async function spliceTo (node: Libp2p, relay: PeerId, peer: PeerId, signal: AbortSignal = AbortSignal.timeout(SPLICE_TIMEOUT_MS)): Promise<Connection> {
  const stream = await node.dialProtocol(relay, SPLICE_PROTOCOL, { signal })
  const relayConnection = node.getConnections(relay)[0]
  if (relayConnection == null) throw new Error('splice: no connection to the relay')
  await send(stream, { peer: peer.toString() }, signal)
  const answer = await receive(stream, signal)
  await stream.close()
  if (answer.accepted !== true) throw new Error(`splice refused: ${String(answer.reason)}`)
  const ticket = parseSpliceTicket(answer)
  if (ticket == null) throw new Error('splice: the relay\'s answer has no valid token (64 hex characters) and port (1-65535)')
  const { port } = ticket
  const socket = await dialSplice(hostOf(relayConnection), port, ticket.token, signal)
  const remoteAddr = spliceAddr(relayConnection.remoteAddr, port, relay, peer)
  const maConn = new SocketConnection(socket, remoteAddr, 'outbound', node.logger.forComponent('punchgate:splice'))
  spliced.add(maConn.timeline)
  return upgraderOf(node).upgradeOutbound(maConn, { signal })
}
