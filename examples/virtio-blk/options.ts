// The demo's command line.
import { parseArgs } from 'node:util'

export const HELP = `Usage: npm run demo -- [options]

A virtio-blk device model on virtio-queue, driven by a simulated guest that
issues a mixed read/write workload and verifies every byte it reads back.

Options:
  --requests N      requests to issue (default 30000)
  --seconds S       run for S seconds instead of a request count
  --queue-size N    queue size, a power of two up to 32768 (default 256)
  --depth N         requests in flight at most, up to the queue size (default 64)
  --no-event-idx    do not negotiate VIRTIO_F_EVENT_IDX (kick/interrupt suppression)
  --indirect PCT    percentage of requests sent as indirect chains (default 25)
  --seed N          seed of the workload and of the interleaving (default 1)
  --disk PATH       disk image file (default: a temporary sparse file, deleted at exit).
                    A missing or empty file is created/extended to --disk-size and kept;
                    a file with contents is refused unless --force (it gets overwritten).
  --disk-size MIB   size of a new disk image in MiB (default 64)
  --force           use a --disk that already has contents, overwriting them
  --json            print the summary as JSON on stdout
  --quiet           no progress output
  -h, --help        this help

Exit status: 0 when every request completed as expected and every byte read back
matched; 1 otherwise; 2 for bad options or a refused disk.`

/** A bad command line; the message names the option. */
export class UsageError extends Error {
  readonly code = 'USAGE'
  override get name(): string {
    return 'UsageError'
  }
}

export interface DemoOptions {
  help: boolean
  /** Requests to issue, or null with `seconds`. */
  requests: number | null
  seconds: number | null
  queueSize: number
  depth: number
  eventIdx: boolean
  indirectPercent: number
  seed: number
  disk: string | undefined
  diskBytes: number
  force: boolean
  json: boolean
  quiet: boolean
}

const MiB = 1024 * 1024

const SPEC = {
  requests: { type: 'string' },
  seconds: { type: 'string' },
  'queue-size': { type: 'string', default: '256' },
  depth: { type: 'string', default: '64' },
  'no-event-idx': { type: 'boolean', default: false },
  indirect: { type: 'string', default: '25' },
  seed: { type: 'string', default: '1' },
  disk: { type: 'string' },
  'disk-size': { type: 'string', default: '64' },
  force: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

/** Parses the command line (without `node` and the script). @throws UsageError */
export function parseOptions(argv: string[]): DemoOptions {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof SPEC }>>
  try {
    parsed = parseArgs({ args: argv, options: SPEC })
  } catch (e) {
    throw new UsageError((e as Error).message) // an unknown option, a missing value
  }
  const values = parsed.values
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < min || n > max)
      throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got ${v}`)
    return n
  }
  if (values.requests !== undefined && values.seconds !== undefined)
    throw new UsageError('give --requests or --seconds, not both')
  const queueSize = int('queue-size', values['queue-size'], 1, 32768)
  if ((queueSize & (queueSize - 1)) !== 0) throw new UsageError(`--queue-size must be a power of two, got ${queueSize}`)
  const seconds = values.seconds === undefined ? null : Number(values.seconds)
  if (seconds !== null && !(seconds > 0 && seconds <= 86400))
    throw new UsageError(`--seconds must be a positive number, got ${values.seconds}`)
  return {
    help: values.help,
    requests: seconds === null ? int('requests', values.requests ?? '30000', 1, Number.MAX_SAFE_INTEGER) : null,
    seconds,
    queueSize,
    depth: int('depth', values.depth, 1, queueSize),
    eventIdx: !values['no-event-idx'],
    indirectPercent: int('indirect', values.indirect, 0, 100),
    seed: int('seed', values.seed, 0, 2 ** 32 - 1),
    disk: values.disk,
    diskBytes: int('disk-size', values['disk-size'], 1, 1024 * 1024) * MiB,
    force: values.force,
    json: values.json,
    quiet: values.quiet,
  }
}
