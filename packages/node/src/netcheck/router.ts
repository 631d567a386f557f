/**
 * Which port-mapping protocols the default gateway speaks, asked once for `punchgate
 * netcheck`: NAT-PMP and UPnP-IGD with portmap/probe.ts's probes, PCP with an ANNOUNCE
 * (RFC 6887 14.1: maps nothing). Only the default gateway of our own routing table is asked
 * (portmap/gateway.ts); the SSDP search is the one multicast, as for the daemon.
 */
import { defaultGateway, type Gateway } from '../portmap/gateway.ts'
import { answersNatPmp, answersSsdp, exchange, NAT_PMP_FIRST_RETRY_MS, NAT_PMP_PORT, type ProbeTarget } from '../portmap/probe.ts'

export interface RouterAnswers {
  /** False with --no-port-mapping: nothing was sent. */
  asked: boolean
  gateway?: string
  natPmp: boolean
  pcp: boolean
  upnpIgd: boolean
}

/** A PCP ANNOUNCE request: version 2, opcode 0, lifetime 0, our address as IPv4-mapped IPv6. */
export function pcpAnnounce (clientIp: string): Buffer {
  const msg = Buffer.alloc(24)
  msg[0] = 2
  msg[20] = 0xff
  msg[21] = 0xff
  clientIp.split('.').forEach((octet, i) => { msg[22 + i] = Number(octet) })
  return msg
}

/** Whether the gateway answers PCP's ANNOUNCE in version 2 with success (a NAT-PMP-only router answers version 0). */
export async function answersPcp (gateway: Gateway, signal: AbortSignal, target: ProbeTarget = {}): Promise<boolean> {
  return undefined !== await exchange({
    bindIp: gateway.localIp,
    host: target.host ?? gateway.ip,
    port: target.port ?? NAT_PMP_PORT,
    message: pcpAnnounce(gateway.localIp),
    retryMs: NAT_PMP_FIRST_RETRY_MS,
    backoff: true,
    multicast: false,
    accept: (msg, from) => from === gateway.ip && msg.length >= 24 && msg[0] === 2 && msg[1] === 0x80 && msg[3] === 0,
    signal
  })
}

export async function askRouter (enabled: boolean, signal: AbortSignal, gatewayOf: () => Promise<Gateway | undefined> = async () => defaultGateway()): Promise<RouterAnswers> {
  if (!enabled) return { asked: false, natPmp: false, pcp: false, upnpIgd: false }
  const gateway = await gatewayOf()
  if (gateway == null) return { asked: true, natPmp: false, pcp: false, upnpIgd: false }
  // NAT-PMP and PCP share the gateway's port 5351: one after the other, so the answers cannot cross.
  const natPmp = await answersNatPmp(gateway, signal)
  const [pcp, upnpIgd] = await Promise.all([answersPcp(gateway, signal), answersSsdp(gateway, signal)])
  return { asked: true, gateway: gateway.ip, natPmp, pcp, upnpIgd }
}
