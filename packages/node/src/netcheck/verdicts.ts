/**
 * `punchgate netcheck`'s judgements, from what was measured (netcheck.ts): pure, so each
 * answer is tested without a network.
 *
 * - mapping: how the NAT maps our socket towards different destinations. Each observation
 *   is the address one observer (a public node's listen address) saw our connection come
 *   from. The same local socket seen at the same public address by two observers:
 *   endpoint-independent (a "cone" NAT, RFC 4787); at different ports: endpoint-dependent
 *   ("symmetric"); at an address of one of our own interfaces: no NAT.
 * - role: public when a reach probe found our listen port open from the outside.
 * - punch methods: which ways to a direct connection can work from here, as this version
 *   implements them (TCP simultaneous open; no UDP punch yet).
 */

export type Transport = 'tcp' | 'quic'

/** One connection to a public node and the address it saw us at. */
export interface Observation {
  transport: Transport
  /** The observer's peer id. */
  peer: string
  /** The address we dialed (`ip:port` of the observer's listener). */
  observer: string
  /** Where it saw us, `ip:port`; undefined when the connection or identify failed. */
  mapped?: string
  /** Why there is no mapped address. */
  error?: string
}

export type Mapping = 'none' | 'endpoint-independent' | 'endpoint-dependent' | 'unknown'

export interface MappingVerdict {
  mapping: Mapping
  /** Distinct mapped addresses seen, in order of observation. */
  mapped: string[]
  reason: string
}

/** `1.2.3.4:5`, `[::1]:5` -> ip and port. */
export function splitHostPort (addr: string): { ip: string, port: number } {
  const i = addr.lastIndexOf(':')
  return { ip: addr.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(addr.slice(i + 1)) }
}

/**
 * How the NAT maps one local socket (all `observations` of one transport were made from it).
 * `ownIps`: this host's interface addresses. `sameSocket`: false when the dials did not
 * share a local port (TCP on a platform without SO_REUSEPORT), which hides the mapping.
 */
export function classifyMapping (observations: Observation[], ownIps: string[], sameSocket = true): MappingVerdict {
  const seen = observations.filter(o => o.mapped != null)
  const mapped = [...new Set(seen.map(o => o.mapped as string))]
  const observers = new Set(seen.map(o => o.observer))
  if (seen.length === 0) return { mapping: 'unknown', mapped, reason: 'no public node told us where it saw us' }
  const ips = new Set(mapped.map(a => splitHostPort(a).ip))
  if ([...ips].every(ip => ownIps.includes(ip))) {
    return { mapping: 'none', mapped, reason: 'public nodes see an address of this host itself: no NAT' }
  }
  if (!sameSocket) {
    return { mapping: 'unknown', mapped, reason: 'this platform dials TCP from a new port each time (no SO_REUSEPORT), which hides how the NAT maps one port' }
  }
  if (observers.size < 2) {
    return { mapping: 'unknown', mapped, reason: 'only one public address answered; two are needed (a second bootstrap, or a second listen port on one)' }
  }
  if (mapped.length === 1) {
    return { mapping: 'endpoint-independent', mapped, reason: `${observers.size} public addresses saw the same public address: the NAT keeps one port for every destination` }
  }
  return { mapping: 'endpoint-dependent', mapped, reason: `${observers.size} public addresses saw ${mapped.length} different ones: the NAT gives each destination a port of its own` }
}

export type Role = 'public' | 'private' | 'undetermined'

/**
 * What the reach probe found: a public node dialed our listen port from a port of its own
 * (`open`), and whether that makes this node public (`reachable`: at an address of ours, as
 * reachability/decide.ts judges it for the daemon; open only through a NAT is not).
 */
export type ReachResult =
  | { outcome: 'reachable' | 'unreachable', peer: string, ip: string, port: number, open: boolean, reason: string }
  | { outcome: 'not-asked', reason: string }

export interface RoleVerdict {
  role: Role
  reason: string
}

/** The role `--role auto` would settle on, or the one `--role` fixes. */
export function chooseRole (setting: 'auto' | 'public' | 'private', hasBootstrap: boolean, reach: ReachResult): RoleVerdict {
  if (setting !== 'auto') return { role: setting, reason: `--role ${setting} says so` }
  if (!hasBootstrap) return { role: 'public', reason: 'no --bootstrap: this node is a bootstrap itself' }
  if (reach.outcome === 'not-asked') return { role: 'undetermined', reason: reach.reason }
  return { role: reach.outcome === 'reachable' ? 'public' : 'private', reason: reach.reason }
}

export interface PunchVerdict {
  method: 'direct' | 'port-mapping' | 'tcp-punch' | 'ipv6-punch' | 'udp-punch' | 'relay'
  works: boolean
  reason: string
}

export interface PunchInput {
  role: Role
  tcp: Mapping
  /** The UDP mapping (measured with QUIC; the udx socket of UDP punching is mapped alike). */
  udp: Mapping
  /** UDP punching is on (the default; `--no-udp-punch` turns it off). */
  udpPunch: boolean
  /** Dials leave from the listening port (Linux, SO_REUSEPORT). */
  reusePort: boolean
  /** What the router answered; `asked: false` when the probe was turned off. */
  portMapping: { natPmp: boolean, pcp: boolean, upnpIgd: boolean, asked: boolean, gateway?: string }
  /** The reach probe got in (at our address or only through the NAT). */
  reachOpen: boolean
  /** A public node answered: a relay is there to fall back on. */
  reachedPublicNode: boolean
  /** This host's global IPv6 addresses, and whether the daemon's --listen has an IPv6 TCP address. */
  ipv6: { addrs: string[], listening: boolean }
}

/** Which ways to a direct connection can work from here, and the relay that always can. */
export function punchMethods (input: PunchInput): PunchVerdict[] {
  const verdicts: PunchVerdict[] = []
  verdicts.push(direct(input))
  const router = [input.portMapping.natPmp ? 'NAT-PMP' : '', input.portMapping.pcp ? 'PCP' : '', input.portMapping.upnpIgd ? 'UPnP-IGD' : ''].filter(Boolean)
  verdicts.push(portMapping(input.portMapping, router))
  verdicts.push(tcpPunch(input))
  verdicts.push(ipv6Punch(input))
  verdicts.push(udpPunch(input.udp, input.udpPunch))
  verdicts.push(input.reachedPublicNode
    ? { method: 'relay', works: true, reason: 'a public node answered: tunnels can always run through a relay' }
    : { method: 'relay', works: false, reason: 'no public node answered' })
  return verdicts
}

function direct (input: PunchInput): PunchVerdict {
  if (input.role === 'public') return { method: 'direct', works: true, reason: 'peers dial this node directly' }
  if (input.reachOpen) {
    return { method: 'direct', works: false, reason: 'the port is open only through the NAT\'s mapping (a full cone): it lasts while our own traffic keeps it; --role public if it is stable' }
  }
  return { method: 'direct', works: false, reason: input.role === 'private' ? 'peers cannot dial in unsolicited' : 'not known whether peers can dial in' }
}

function portMapping (answers: PunchInput['portMapping'], router: string[]): PunchVerdict {
  if (!answers.asked) return { method: 'port-mapping', works: false, reason: 'not asked (--no-port-mapping)' }
  if (answers.gateway == null) return { method: 'port-mapping', works: false, reason: 'no IPv4 default gateway to ask' }
  return router.length > 0
    ? { method: 'port-mapping', works: true, reason: `the router answers ${router.join(' and ')}: the daemon asks it to forward its listen ports (--port-mapping, on by default)` }
    : { method: 'port-mapping', works: false, reason: 'the router answers none of NAT-PMP, PCP and UPnP-IGD' }
}

/** TCP simultaneous open over IPv6: no NAT, a stateful firewall at most (docs/nat-traversal.md, "IPv6"). */
function ipv6Punch (input: PunchInput): PunchVerdict {
  const method = 'ipv6-punch'
  if (input.ipv6.addrs.length === 0) return { method, works: false, reason: 'no global IPv6 address on this host' }
  if (!input.reusePort) return { method, works: false, reason: 'needs Linux (SO_REUSEPORT: dials from the listening port)' }
  if (!input.ipv6.listening) return { method, works: false, reason: 'the daemon listens on IPv4 only: add --listen /ip6/::/tcp/PORT' }
  return { method, works: true, reason: 'global IPv6, no NAT: works with a peer that has global IPv6 too, through stateful firewalls on both sides' }
}

function tcpPunch (input: PunchInput): PunchVerdict {
  if (!input.reusePort) return { method: 'tcp-punch', works: false, reason: 'needs Linux (SO_REUSEPORT: dials from the listening port)' }
  switch (input.tcp) {
    case 'none':
      return { method: 'tcp-punch', works: true, reason: 'no NAT here: a peer behind an endpoint-independent NAT can punch to this node' }
    case 'endpoint-independent':
      return { method: 'tcp-punch', works: true, reason: 'the TCP mapping is endpoint-independent: works with a peer whose NAT is too (or that has none)' }
    case 'endpoint-dependent':
      return { method: 'tcp-punch', works: false, reason: 'the NAT maps each destination to a new port, so a peer cannot know where to dial: tunnels to peers behind NAT go through a relay' }
    case 'unknown':
      return { method: 'tcp-punch', works: false, reason: 'the TCP mapping could not be measured' }
  }
}

/** UDP punching (on by default) needs it on both ends and their bootstrap: the verdict says so. */
function udpPunch (udp: Mapping, on: boolean): PunchVerdict {
  const method = 'udp-punch'
  if (!on) return { method, works: false, reason: 'turned off here (--no-udp-punch)' }
  switch (udp) {
    case 'none':
      return { method, works: true, reason: 'no NAT here: with UDP punching on at both ends and their bootstrap (the default), a peer behind an endpoint-independent UDP NAT can punch to this node' }
    case 'endpoint-independent':
      return { method, works: true, reason: 'the UDP mapping is endpoint-independent: with UDP punching on at both ends and their bootstrap (the default), works with a peer whose NAT is too, even through a firewall that drops inbound TCP SYNs' }
    case 'endpoint-dependent':
      return { method, works: false, reason: 'the NAT maps each UDP destination to a new port, so a peer cannot know where to send' }
    case 'unknown':
      return { method, works: false, reason: 'the UDP mapping could not be measured' }
  }
}

/** IPv6 addresses in 2000::/3 (global unicast) among `addrs`. */
export function globalIPv6 (addrs: Array<{ family: string | number, address: string, internal: boolean }>): string[] {
  return addrs
    .filter(a => (a.family === 'IPv6' || a.family === 6) && !a.internal && /^[23][0-9a-f]{3}:/i.test(a.address))
    .map(a => a.address)
}
