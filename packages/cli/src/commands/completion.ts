/**
 * `punchgate completion [bash|zsh]`: prints a shell completion script for the commands and
 * their options. The words are written into the script when it is printed, so a TAB runs
 * no Node process; print it again after an upgrade. zsh loads the same function through
 * bashcompinit.
 */
import yargs, { type Argv } from 'yargs'
import type { Command } from '../command.ts'

export const SHELLS = ['bash', 'zsh'] as const
export type Shell = typeof SHELLS[number]

export interface CompletionArgs {
  shell?: Shell
}

/** What yargs knows after a builder ran: not in @types/yargs, stable across yargs 17-18. */
interface BuiltOptions {
  key: Record<string, unknown>
  choices: Record<string, string[]>
}

/** What completion reads of a command: its syntax and its options. */
export type Completable = Pick<Command<unknown>, 'command' | 'builder'>

/** A command's name (none for the default command) and the words that may follow it. */
export interface CompletionEntry {
  name?: string
  words: string[]
}

/** Options (and positional choices) of each command, by building it on a fresh parser. */
export function completionEntries (commands: Completable[]): CompletionEntry[] {
  return commands.map(command => {
    const [name = '', ...rest] = command.command.split(' ')
    const positionals = rest.map(p => p.replace(/[<>[\].]/g, ''))
    const built = (command.builder(yargs()) as unknown as { getOptions: () => BuiltOptions }).getOptions()
    const flags = Object.keys(built.key).filter(k => !positionals.includes(k)).map(k => k.length === 1 ? `-${k}` : `--${k}`)
    const choices = positionals.flatMap(p => built.choices[p] ?? [])
    return { ...(name !== '$0' ? { name } : {}), words: [...choices, ...flags] }
  })
}

const quote = (words: string[]): string => words.join(' ').replace(/[^A-Za-z0-9 ._-]/g, '')

export function completionScript (shell: Shell, entries: CompletionEntry[]): string {
  const named = entries.filter(e => e.name != null)
  const top = [...named.map(e => e.name ?? ''), ...entries.filter(e => e.name == null).flatMap(e => e.words)]
  const cases = named.map(e => `    ${e.name}) words="${quote(e.words)}" ;;`).join('\n')
  const prelude = shell === 'zsh' ? 'autoload -U +X bashcompinit && bashcompinit\n' : ''
  return `# punchgate completion for ${shell}: add to ~/.${shell}rc, e.g. punchgate completion ${shell} >> ~/.${shell}rc
${prelude}_punchgate_completions() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" command="" word words
  for word in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$word" in -*) ;; *) command="$word"; break ;; esac
  done
  case "$command" in
${cases}
    *) words="${quote([...new Set(top)])}" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _punchgate_completions punchgate
`
}

/** Built with the commands it completes (main's list), so none is left out. */
export function completionCommand (commands: Completable[]): Command<CompletionArgs> {
  return {
    command: 'completion [shell]',
    describe: 'print a shell completion script: punchgate completion >> ~/.bashrc (zsh: punchgate completion zsh >> ~/.zshrc)',
    builder: (cli: Argv) => cli.positional('shell', { choices: SHELLS, describe: 'the shell', defaultDescription: 'zsh when $SHELL is zsh, else bash' }) as Argv<CompletionArgs>,
    run: async (args, io) => {
      const shell = args.shell ?? ((io.env.SHELL ?? '').endsWith('zsh') ? 'zsh' : 'bash')
      io.stdout.write(completionScript(shell, [...completionEntries(commands), { name: 'completion', words: [...SHELLS] }]))
      return 0
    }
  }
}
