/**
 * `punchgate analyze [FILE|-]...`: reports from daemons' JSON event logs (docs/events.md):
 * summary, connections, latency, tunnels, phases. Several files (one per daemon) are
 * analysed together, so the topology shows which logged nodes talked to which.
 */
import { readFile } from 'node:fs/promises'
import { text } from 'node:stream/consumers'
import { printableJson } from '@punchgate/node'
import { mergeRecords, parseLog, type ParsedSource } from '../analyze/records.ts'
import { renderAnalysis } from '../analyze/render.ts'
import { analyze, REPORTS, type ReportName } from '../analyze/reports.ts'
import type { Command, Io } from '../command.ts'
import { RuntimeError, UsageError } from '../errors.ts'

export interface AnalyzeArgs {
  files?: string[]
  report?: ReportName[]
  json?: boolean
}

export const analyzeCommand: Command<AnalyzeArgs> = {
  command: 'analyze [files..]',
  describe: 'report on JSON event logs (FILE, or - for stdin): summary, connections, latency, tunnels, phases',
  builder: yargs => yargs
    .positional('files', { type: 'string', array: true, describe: 'log files, one per daemon; - or none reads stdin' })
    .options({
      report: {
        type: 'string',
        array: true,
        choices: REPORTS,
        requiresArg: true,
        describe: 'only these reports (repeatable)',
        defaultDescription: 'all'
      },
      json: { type: 'boolean', describe: 'print the reports as one JSON object' }
    }),
  run: async (args, io) => {
    const files = args.files != null && args.files.length > 0 ? args.files : ['-']
    if (files.filter(f => f === '-').length > 1) throw new UsageError('analyze: stdin (-) can be read only once')
    const sources = await Promise.all(files.map(async file => readSource(file, io)))
    const analysis = analyze(sources, mergeRecords(sources), args.report ?? REPORTS)
    io.stdout.write(args.json === true ? `${printableJson(analysis)}\n` : renderAnalysis(analysis))
    return 0
  }
}

async function readSource (file: string, io: Io): Promise<ParsedSource> {
  if (file === '-') return parseLog('stdin', await text(io.stdin ?? process.stdin))
  try {
    return parseLog(file, await readFile(file, 'utf8'))
  } catch (err) {
    throw new RuntimeError(`analyze: cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}
