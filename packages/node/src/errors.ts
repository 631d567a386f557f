/**
 * Named errors. Callers match on `name` (it survives duplicate package copies),
 * and the CLI maps `kind` to an exit code: usage errors are the user's input,
 * runtime errors are the world's state.
 */
export type ErrorKind = 'usage' | 'runtime'

export abstract class PunchgateError extends Error {
  abstract readonly kind: ErrorKind
}

/** A flag or environment value that cannot be parsed or is inconsistent. */
export class ConfigError extends PunchgateError {
  static readonly NAME = 'ConfigError'
  readonly kind = 'usage'
  readonly flag: string
  readonly value: string

  constructor (flag: string, value: string, reason: string) {
    super(`--${flag} ${JSON.stringify(value)}: ${reason}`)
    this.name = ConfigError.NAME
    this.flag = flag
    this.value = value
  }
}

/** The identity key file exists but cannot be read or parsed; it is never overwritten. */
export class IdentityError extends PunchgateError {
  static readonly NAME = 'IdentityError'
  readonly kind = 'runtime'
  readonly path: string

  constructor (path: string, reason: string) {
    super(`--identity ${JSON.stringify(path)}: ${reason}`)
    this.name = IdentityError.NAME
    this.path = path
  }
}

/** A key file (swarm key, new identity) that must not be written or read as it stands. */
export class SecretFileError extends PunchgateError {
  static readonly NAME = 'SecretFileError'
  readonly kind = 'runtime'
  readonly path: string

  constructor (flag: string, path: string, reason: string) {
    super(`--${flag} ${JSON.stringify(path)}: ${reason}`)
    this.name = SecretFileError.NAME
    this.path = path
  }
}

/** A local tunnel listener could not bind its address (in use, no permission). */
export class BindError extends PunchgateError {
  static readonly NAME = 'BindError'
  readonly kind = 'runtime'
  readonly bind: string

  constructor (flag: string, spec: string, bind: string, reason: string) {
    super(`--${flag} ${JSON.stringify(spec)}: cannot bind ${bind}: ${reason}`)
    this.name = BindError.NAME
    this.bind = bind
  }
}

/** The swarm could not listen on a --listen address. */
export class ListenError extends PunchgateError {
  static readonly NAME = 'ListenError'
  readonly kind = 'runtime'

  constructor (addrs: string[], reason: string, flag = 'listen') {
    super(`--${flag} ${addrs.map(a => JSON.stringify(a)).join(' ')}: ${reason}`)
    this.name = ListenError.NAME
  }
}

/** A tunnel handshake frame broke the protocol (too large, truncated, not JSON). */
export class ProtocolError extends Error {
  static readonly NAME = 'ProtocolError'

  constructor (message: string) {
    super(message)
    this.name = ProtocolError.NAME
  }
}

/** The remote end refused a tunnel; `reason` is the wire reason code. */
export class TunnelRejectedError extends Error {
  static readonly NAME = 'TunnelRejectedError'
  readonly reason: string
  /** The server's explanation, when it gave one (e.g. which destination was refused). */
  readonly detail?: string

  constructor (service: string, reason: string, detail?: string) {
    super(`service ${JSON.stringify(service)} rejected: ${reason}${detail != null ? ` (${detail})` : ''}`)
    this.name = TunnelRejectedError.NAME
    this.reason = reason
    if (detail != null) this.detail = detail
  }
}

/** No peer in the DHT provides the service asked for. */
export class ServiceNotFoundError extends PunchgateError {
  static readonly NAME = 'ServiceNotFoundError'
  readonly kind = 'runtime'
  readonly service: string

  constructor (service: string) {
    super(`no peer provides service ${JSON.stringify(service)}`)
    this.name = ServiceNotFoundError.NAME
    this.service = service
  }
}

/** Every candidate peer failed to give a tunnel to the service; `reasons` has one entry per peer. */
export class TunnelOpenError extends PunchgateError {
  static readonly NAME = 'TunnelOpenError'
  readonly kind = 'runtime'
  readonly service: string

  constructor (service: string, reasons: string[]) {
    super(`cannot open service ${JSON.stringify(service)}: ${reasons.join('; ')}`)
    this.name = TunnelOpenError.NAME
    this.service = service
  }
}

/** Another daemon answers on the control socket: two daemons would fight over it. */
export class ControlSocketInUseError extends PunchgateError {
  static readonly NAME = 'ControlSocketInUseError'
  readonly kind = 'runtime'
  readonly path: string

  constructor (path: string) {
    super(`--control ${JSON.stringify(path)}: another punchgate daemon is running on this control socket`)
    this.name = ControlSocketInUseError.NAME
    this.path = path
  }
}

/** The control socket could not be created, or a daemon's reply broke the control protocol. */
export class ControlError extends PunchgateError {
  static readonly NAME = 'ControlError'
  readonly kind = 'runtime'

  constructor (message: string) {
    super(message)
    this.name = ControlError.NAME
  }
}

/** No daemon answers on the control socket (no socket file, or a stale one). */
export class DaemonNotRunningError extends PunchgateError {
  static readonly NAME = 'DaemonNotRunningError'
  readonly kind = 'runtime'
  readonly path: string

  constructor (path: string) {
    super(`no punchgate daemon is running (nothing answers on ${path})`)
    this.name = DaemonNotRunningError.NAME
    this.path = path
  }
}

/** A hole-punch round ended without a direct connection. */
export class PunchError extends Error {
  static readonly NAME = 'PunchError'

  constructor (message: string) {
    super(message)
    this.name = PunchError.NAME
  }
}

/** The known-providers file (provider pins, docs/access-control.md) cannot be read, parsed or written. */
export class KnownProvidersError extends PunchgateError {
  static readonly NAME = 'KnownProvidersError'
  readonly kind = 'usage'
  readonly path: string

  constructor (path: string, reason: string) {
    super(`--known-providers ${JSON.stringify(path)}: ${reason}`)
    this.name = KnownProvidersError.NAME
    this.path = path
  }
}

/** `connect` found providers of the service, none of them trusted (docs/access-control.md). */
export class NoTrustedProviderError extends PunchgateError {
  static readonly NAME = 'NoTrustedProviderError'
  readonly kind = 'runtime'
  readonly service: string
  readonly untrusted: string[]

  constructor (service: string, untrusted: string[], reason: string) {
    super(`service ${JSON.stringify(service)}: ${reason} (untrusted: ${untrusted.join(', ')})`)
    this.name = NoTrustedProviderError.NAME
    this.service = service
    this.untrusted = untrusted
  }
}

/** A public node keeps no more provider records for a peer, or in all (provider-caps.ts). */
export class ProviderCapError extends Error {
  static readonly NAME = 'ProviderCapError'

  constructor (message: string) {
    super(message)
    this.name = ProviderCapError.NAME
  }
}

/** A public node refused a reach probe (reachability/): `reason` is the wire reason code. */
export class ReachRefusedError extends Error {
  static readonly NAME = 'ReachRefusedError'
  readonly reason: string

  constructor (reason: string) {
    super(`reach probe refused: ${reason}`)
    this.name = ReachRefusedError.NAME
    this.reason = reason
  }
}

/** `punchgate netcheck` reached no public node: nothing could be measured. */
export class NetcheckError extends PunchgateError {
  static readonly NAME = 'NetcheckError'
  readonly kind = 'runtime'

  constructor (message: string) {
    super(message)
    this.name = NetcheckError.NAME
  }
}

/** A bootstrap's address answered with a peer other than the one its `/p2p/` part names. */
export class BootstrapPeerMismatchError extends PunchgateError {
  static readonly NAME = 'BootstrapPeerMismatchError'
  readonly kind = 'runtime'

  constructor (addr: string, found: string) {
    super(`${addr}: the peer there is ${found}`)
    this.name = BootstrapPeerMismatchError.NAME
  }
}
