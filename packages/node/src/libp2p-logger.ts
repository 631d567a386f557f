/**
 * libp2p's debug logging, off unless asked for. libp2p makes a logger for every stream and
 * every protocol negotiation, and its default logger (`debug`-style, enabled by the DEBUG
 * variable) builds three of them each time and asks whether stderr is a terminal for each:
 * measurable in the cost of a new tunnel connection (docs/performance.md). With DEBUG
 * unset none of them would print a line, so the node hands libp2p loggers that are
 * already off; with DEBUG set, libp2p's own logger prints as it always did.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'

const off: Logger = Object.assign(() => {}, {
  error: () => {},
  trace: () => {},
  enabled: false,
  newScope: () => off
})

const silent: ComponentLogger = { forComponent: () => off }

/** The logger for createLibp2p: undefined (libp2p's default) when DEBUG names something. */
export function libp2pLogger (env: NodeJS.ProcessEnv = process.env): ComponentLogger | undefined {
  return (env.DEBUG ?? '') !== '' ? undefined : silent
}
