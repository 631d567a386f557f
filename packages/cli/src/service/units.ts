/**
 * The service definitions `punchgate up` installs: a systemd user unit and a launchd
 * agent. Both name Node and the CLI by absolute path, since a service manager runs them
 * without the user's PATH. deploy/systemd/ and deploy/launchd/ hold these same files
 * rendered with @PLACEHOLDERS@ (a test keeps them equal).
 */
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../node-flags.ts'
import { SERVICE_NAME } from './paths.ts'

export interface UnitPaths {
  /** The Node executable. */
  node: string
  /** The CLI's bin script (packages/cli/bin/punchgate.js). */
  cli: string
  envFile: string
  /** launchd only: where the daemon's stdout and stderr go. */
  logFile: string
}

/** What deploy/ shows in place of each path. */
export const PLACEHOLDERS: UnitPaths = { node: '@NODE@', cli: '@PUNCHGATE@', envFile: '@ENV_FILE@', logFile: '@LOG_FILE@' }

/** After= orders the start after the network is up where that target exists (systemd's user manager has none). */
export function systemdUnit (paths: UnitPaths): string {
  return `# Punchgate as a systemd user service (~/.config/systemd/user/${SERVICE_NAME}.service).
# \`punchgate up\` writes it with absolute paths in place of the @...@ placeholders,
# and \`punchgate down\` removes it. The settings are in the EnvironmentFile.
[Unit]
Description=Punchgate peer-to-peer TCP tunnels
After=network-online.target

[Service]
EnvironmentFile=${paths.envFile.replaceAll('%', '%%')}
${Object.entries(DAEMON_ENV).map(([name, value]) => `Environment=${name}=${value}\n`).join('')}ExecStart=${[paths.node, ...DAEMON_NODE_FLAGS, paths.cli].map(systemdArgument).join(' ')}
Restart=always
RestartSec=5

[Install]
WantedBy=default.target
`
}

/** Node reads the settings file itself (--env-file): launchd has no EnvironmentFile. */
export function launchdPlist (paths: UnitPaths): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Punchgate as a launchd agent (~/Library/LaunchAgents/${SERVICE_NAME}.plist).
     \`punchgate up\` writes it with absolute paths in place of the @...@ placeholders,
     and \`punchgate down\` removes it. Node reads the settings from the env file. -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>${SERVICE_NAME}</string>
  <key>ProgramArguments</key>
  <array>
    <string>${xml(paths.node)}</string>
${DAEMON_NODE_FLAGS.map(flag => `    <string>${xml(flag)}</string>\n`).join('')}    <string>--env-file=${xml(paths.envFile)}</string>
    <string>${xml(paths.cli)}</string>
  </array>
  <key>EnvironmentVariables</key>
  <dict>
${Object.entries(DAEMON_ENV).map(([name, value]) => `    <key>${xml(name)}</key>\n    <string>${xml(value)}</string>\n`).join('')}  </dict>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <true/>
  <key>StandardOutPath</key>
  <string>${xml(paths.logFile)}</string>
  <key>StandardErrorPath</key>
  <string>${xml(paths.logFile)}</string>
</dict>
</plist>
`
}

/** One ExecStart word: % and $ escaped (specifiers, variables), quoted when it holds spaces or quotes. */
export function systemdArgument (word: string): string {
  const escaped = word.replaceAll('%', '%%').replaceAll('$', '$$$$')
  if (!/[\s"'\\]/.test(escaped)) return escaped
  return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
}

function xml (text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}
