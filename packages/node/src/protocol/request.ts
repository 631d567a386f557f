/**
 * Client side of the tunnel handshake: ask for a service on an open stream and wait
 * for the answer. Shared by the tunnel listener and `openTunnelStream` (punchgate connect).
 */
import type { Stream } from '@libp2p/interface'
import { TunnelRejectedError } from '../errors.ts'
import { decodeReply, readFrame, writeFrame } from './handshake.ts'

/** Resolves once the server accepted; throws TunnelRejectedError on a refusal, ProtocolError on a bad reply. */
export async function requestTunnel (stream: Stream, service: string, signal: AbortSignal): Promise<void> {
  await writeFrame(stream, { service }, signal)
  const reply = decodeReply(await readFrame(stream, signal))
  if (!reply.accepted) throw new TunnelRejectedError(service, reply.reason)
}
