/**
 * Which port-mapping protocols the default gateway speaks, asked once for `punchgate
 * netcheck`: NAT-PMP and UPnP-IGD with portmap/probe.ts's probes, PCP with an ANNOUNCE
 * (RFC 6887 14.1: maps nothing). Only the default gateway of our own routing table is asked
 * (portmap/gateway.ts); the SSDP search is the one multicast, as for the daemon.
 */
import { defaultGateway, type Gateway } from '../portmap/gateway.ts'
import { announce, announcedPcp } from '../portmap/pcp.ts'
import { answersNatPmp, answersSsdp, type ProbeTarget } from '../portmap/probe.ts'

export interface RouterAnswers {
  /** False with --no-port-mapping: nothing was sent. */
  asked: boolean
  gateway?: string
  natPmp: boolean
  pcp: boolean
  upnpIgd: boolean
}

/** Whether the gateway answers PCP's ANNOUNCE in version 2 with success (a NAT-PMP-only router answers version 0): portmap/pcp.ts's own ANNOUNCE. */
export async function answersPcp (gateway: Gateway, signal: AbortSignal, target: ProbeTarget = {}): Promise<boolean> {
  return announcedPcp(await announce(gateway, signal, target))
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
