/**
 * Which side of a round runs the birthday method (transport/udx/birthday.ts), from the two
 * sides' UDP candidates as offered. It is worth it only when exactly one side looks
 * endpoint-dependent ("symmetric", prospect.ts): that side fans out sockets, the other (a cone:
 * its mapping is the one it offered) sprays PROBEs at random ports of the first's public IP.
 * Both symmetric: neither side's mapping is known, the method cannot meet; neither: the plain
 * UDP punch works already.
 *
 * On the wire (a DCUtR extension, dcutr-wire.ts): A's CONNECT says `offer` when A can run it;
 * B, which then knows both lists, answers with the choice (`sender-fans-out` or
 * `receiver-fans-out`), or nothing. A never runs it unless it offered, and either side sprays
 * or fans out only towards the peer's filtered public UDP candidate.
 */
import { isIPv4 } from 'node:net'
import { udpHostPort, type HostPort } from '../transport/udx/addr.ts'
import { isPrivateIp, usableIp } from './candidates.ts'
import { endpointDependentSign } from './prospect.ts'

export type HardNatField = 'offer' | 'sender-fans-out' | 'receiver-fans-out'
export type FanOutSide = 'initiator' | 'responder'

/** B's choice: which side fans out, or undefined when the birthday method does not fit. */
export function chooseBirthday (initiatorUdp: string[], responderUdp: string[]): FanOutSide | undefined {
  if (initiatorUdp.length === 0 || responderUdp.length === 0) return undefined
  const a = endpointDependentSign(initiatorUdp) != null
  const b = endpointDependentSign(responderUdp) != null
  if (a === b) return undefined
  return a ? 'initiator' : 'responder'
}

/**
 * The peer's public UDP mapping among its filtered candidates: what we fan out to, and whose
 * IP we spray. Checked again here: public IPv4 only, never loopback, unspecified, link-local,
 * multicast or reserved (even where a test lets loopback candidates through).
 */
export function publicMapping (usableUdp: string[]): HostPort | undefined {
  return usableUdp.map(udpHostPort).find((t): t is HostPort => t != null && isIPv4(t.host) && !isPrivateIp(t.host) && usableIp(t.host, { interfaces: [] }))
}
