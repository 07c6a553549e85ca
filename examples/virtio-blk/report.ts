// What the demo prints: a progress line while it runs, then a summary (text or JSON).
import type { BlkDeviceStats } from './device'
import type { DemoOptions } from './options'
import type { GuestStats } from './workload'

/** The options a run used, as reported: the disk is named ('temporary' when none was given). */
export type RunConfig = Omit<DemoOptions, 'help' | 'force' | 'json' | 'quiet' | 'disk'> & { disk: string }

export interface RunReport {
  config: RunConfig
  elapsedSeconds: number
  requests: number
  requestsPerSecond: number
  /** Data moved by the device, in MiB/s (2^20 bytes). */
  readMiBps: number
  writeMiBps: number
  bytesRead: number
  bytesWritten: number
  /** Device → driver interrupts. */
  notifications: { sent: number; suppressed: number; requestsPerNotification: number }
  /** Driver → device kicks. */
  kicks: { sent: number; suppressed: number }
  /** Status bytes the device wrote; noStatus: malformed chains completed with used len 0. */
  status: { ok: number; ioerr: number; unsupp: number; noStatus: number }
  requestsByKind: GuestStats['byKind']
  indirectChains: number
  verification: { bytesVerified: number; errors: number; mismatchedBytes: number; unexpectedCompletions: number }
  interrupted: boolean
  failure: string | null
  errors: string[]
  passed: boolean
}

export interface ReportInput {
  config: RunConfig
  elapsedMs: number
  device: BlkDeviceStats
  guest: GuestStats
  kicks: { sent: number; suppressed: number }
  interrupted: boolean
  failure: string | null
  errors: string[]
}

const MiB = 1024 * 1024

export function buildReport(r: ReportInput): RunReport {
  const s = Math.max(r.elapsedMs, 1) / 1000
  const d = r.device
  const g = r.guest
  // Everything submitted came back, the device and the guest agree, and nothing was off.
  const consistent =
    g.completed === g.submitted &&
    d.requests === g.completed &&
    d.ok === g.status.ok &&
    d.ioerr === g.status.ioerr &&
    d.unsupp === g.status.unsupp &&
    d.noStatus === g.status.none
  const passed = r.failure === null && consistent && g.verifyErrors === 0 && g.unexpected === 0
  const errors = [...r.errors]
  if (!consistent) errors.push('device and guest counts disagree')
  return {
    config: r.config,
    elapsedSeconds: round(s, 3),
    requests: g.completed,
    requestsPerSecond: Math.round(g.completed / s),
    readMiBps: round(d.bytesRead / MiB / s, 1),
    writeMiBps: round(d.bytesWritten / MiB / s, 1),
    bytesRead: d.bytesRead,
    bytesWritten: d.bytesWritten,
    notifications: {
      sent: d.notifications,
      suppressed: d.notificationsSuppressed,
      requestsPerNotification: round(g.completed / Math.max(d.notifications, 1), 1),
    },
    kicks: r.kicks,
    status: { ok: d.ok, ioerr: d.ioerr, unsupp: d.unsupp, noStatus: d.noStatus },
    requestsByKind: g.byKind,
    indirectChains: g.indirect,
    verification: {
      bytesVerified: g.bytesVerified,
      errors: g.verifyErrors,
      mismatchedBytes: g.mismatchedBytes,
      unexpectedCompletions: g.unexpected,
    },
    interrupted: r.interrupted,
    failure: r.failure,
    errors,
    passed,
  }
}

/** One line of progress. */
export function progressLine(elapsedMs: number, device: BlkDeviceStats, target: string): string {
  const s = Math.max(elapsedMs, 1) / 1000
  return (
    `${(s).toFixed(1)}s  ${device.requests}${target} requests  ${Math.round(device.requests / s)} req/s  ` +
    `read ${(device.bytesRead / MiB / s).toFixed(1)} MiB/s  write ${(device.bytesWritten / MiB / s).toFixed(1)} MiB/s`
  )
}

/** The summary: {@link formatHeader} then {@link formatResults}. */
export function formatSummary(r: RunReport): string {
  return `${formatHeader(r.config)}\n${formatResults(r)}`
}

/** What is run, printed before the run starts (so it comes before any progress line). */
export function formatHeader(c: RunConfig): string {
  return [
    `virtio-blk demo: queue size ${c.queueSize}, depth ${c.depth}, event idx ${c.eventIdx ? 'on' : 'off'}, ` +
      `${c.indirectPercent}% indirect, seed ${c.seed}`,
    `disk: ${c.disk} (${(c.diskBytes / MiB).toFixed(0)} MiB)`,
    '',
  ].join('\n')
}

/** What the run did, printed after it. */
export function formatResults(r: RunReport): string {
  const k = r.requestsByKind
  const pct = (part: number, whole: number): string => (whole === 0 ? '0' : ((100 * part) / whole).toFixed(1)) + '%'
  const lines = [
    `requests        ${r.requests} in ${r.elapsedSeconds.toFixed(2)} s = ${r.requestsPerSecond} req/s` +
      (r.interrupted ? ' (interrupted)' : ''),
    `  by kind       read ${k.read}, write ${k.write}, flush ${k.flush}, get-id ${k.getId}, ` +
      `unsupported ${k.unsupported}, out-of-range ${k.outOfRange}, short header ${k.shortHeader}, no status ${k.noStatus}`,
    `  indirect      ${r.indirectChains} chains (${pct(r.indirectChains, r.requests)})`,
    `throughput      read ${r.readMiBps} MiB/s (${mib(r.bytesRead)}), write ${r.writeMiBps} MiB/s (${mib(r.bytesWritten)})`,
    `interrupts      ${r.notifications.sent} sent for ${r.requests} requests ` +
      `(${r.notifications.requestsPerNotification} requests each), ${r.notifications.suppressed} suppressed`,
    `kicks           ${r.kicks.sent} sent, ${r.kicks.suppressed} suppressed ` +
      `(${pct(r.kicks.suppressed, r.kicks.sent + r.kicks.suppressed)})`,
    `status          OK ${r.status.ok}, IOERR ${r.status.ioerr}, UNSUPP ${r.status.unsupp}, ` +
      `no status byte ${r.status.noStatus} (IOERR/UNSUPP/no status are the deliberately bad requests)`,
    `verification    ${mib(r.verification.bytesVerified)} read back and compared: ` +
      `${r.verification.errors} verification errors, ${r.verification.unexpectedCompletions} unexpected completions`,
  ]
  if (r.failure) lines.push(`FAILURE         ${r.failure}`)
  for (const e of r.errors) lines.push(`  error: ${e}`)
  lines.push('', r.passed ? 'PASS' : 'FAIL')
  return lines.join('\n')
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
