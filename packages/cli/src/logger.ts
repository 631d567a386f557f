/**
 * The daemon's logger. When stdout is not a terminal, each record is one JSON line on
 * stdout: what log shippers and `grep '"event":"..."'` expect, and what docs/events.md
 * shows. When stdout is a terminal a person is watching, so each record is one sentence
 * (view/sentences.ts) on stderr, where diagnostics conventionally go.
 */
import { pino } from 'pino'
import type { Logger } from '@punchgate/node'
import type { Io } from './command.ts'
import { Memory, renderLine } from './view/sentences.ts'

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export async function createLogger (level: LogLevel, io: Pick<Io, 'stdout' | 'stderr'>): Promise<Logger> {
  const options = {
    level,
    // pid and hostname are noise for a single-process daemon; the supervisor knows both.
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime
  }
  if (io.stdout.isTTY !== true) {
    // A reader that goes away (`punchgate | head`, a log shipper restarting) must not take
    // the daemon down with a stack trace (EPIPE): its logging stops, the daemon runs on.
    let open = true
    io.stdout.on('error', () => { open = false })
    const json: Logger = pino(options, { write: (record: string) => { if (open) io.stdout.write(record) } })
    return json
  }
  // Formatting in the write call, not through a piped stream, keeps each record
  // synchronous: nothing is left in a pipe when a second signal exits at once.
  const memory = new Memory()
  const pretty: Logger = pino(options, { write: (record: string) => { io.stderr.write(renderLine(JSON.parse(record) as Record<string, unknown>, memory)) } })
  return pretty
}
