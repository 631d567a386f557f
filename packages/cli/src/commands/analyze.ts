import type { Command } from '../command.ts'
export const analyzeCommand: Command<object> = { command: 'analyze', describe: 'x', builder: y => y, run: async () => 0 }
