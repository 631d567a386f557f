export * from './config.ts'
export * from './errors.ts'
export * from './events.ts'
export * from './identity.ts'
export * from './logger.ts'
export * from './constants.ts'
export * from './specs.ts'
export * from './swarm-key.ts'
export * from './access.ts'
export {
  startNode, type PunchgateNode, type StartOptions, type StopOptions, type TunnelInfo, type NodeStatus, type ConnectedPeer,
  type OpenTunnelOptions, type TunnelStream
} from './node.ts'
export { ControlServer } from './control/server.ts'
export { defaultControlPath, requestConnect, requestStatus, DaemonError, type ControlSession, type DaemonStatus } from './control/client.ts'
export type { ConnectTotals } from './control/protocol.ts'
export * from './trust.ts'
export { LogLimit, OVERFLOW_KEY, LOG_LIMIT_BURST, LOG_LIMIT_WINDOW_MS, LOG_LIMIT_MAX_KEYS, type Suppressed, type LogLimitInit, type LogLimitTimers } from './log-limit.ts'
export { privatePathProblem } from './secret-file.ts'
export { escapeControl, printableJson } from './printable.ts'
export { askReach, type ReachAnswer, type ReachRefusal } from './reachability/client.ts'
export { netcheck, type NetcheckReport, type NetcheckOptions } from './netcheck/netcheck.ts'
export type { Observation, Mapping, MappingVerdict, Role, RoleVerdict, PunchVerdict, ReachResult } from './netcheck/verdicts.ts'
// The daemon's encrypter and by-name lookup, for peers outside it (bench/scale/ runs light clients with them).
export { socketTls } from './socket-tls.ts'
export { libp2pLogger } from './libp2p-logger.ts'
// A local socket joined to a stream with a tunnel's backpressure (bench/floor-libp2p.ts runs it alone).
export { pipeSocketStream, type PipeResult } from './protocol/pipe.ts'
// The UDP punching carrier, as a libp2p transport (bench/udx.ts measures its rate).
export { udxTransport, findUdx } from './transport/udx/transport.ts'
export { udxAddr } from './transport/udx/addr.ts'
export { findServiceProviders, publishService, serviceKey } from './discovery.ts'
