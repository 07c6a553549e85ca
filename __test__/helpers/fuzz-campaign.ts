// A long fuzz campaign outside ava (whose timeout ends long tests): runs the
// properties of fuzz-guest.spec.ts and fuzz-ops.spec.ts for
// VIRTIO_QUEUE_FUZZ_RUNS cases each (default 100000), in chunks with fresh
// seeds, printing progress, and stops at the first failure with its seed,
// path and counterexample (replay: VIRTIO_QUEUE_FUZZ_SEED=<seed> npx ava ...).
//
//   VIRTIO_QUEUE_FUZZ_RUNS=1000000 node --import tsx __test__/helpers/fuzz-campaign.ts [guest|ops]...
import fc from 'fast-check'

import { deviceArb, guestArb } from './fuzz-arb'
import { guestStats, runGuestCase } from './fuzz-guest'
import { opsArb, runOpsCase } from './fuzz-ops'

// biome-ignore lint/suspicious/noExplicitAny: the campaigns' properties have different argument types
const properties: Record<string, () => fc.IProperty<any>> = {
  guest: () => fc.property(guestArb, deviceArb, (g, d) => runGuestCase(g, d)),
  ops: () => fc.property(opsArb, (o) => runOpsCase(o)),
}

const total = Number(process.env.VIRTIO_QUEUE_FUZZ_RUNS) || 100_000
const chunk = 10_000
const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(properties)

let failed = false
for (const name of names) {
  const make = properties[name]
  if (!make) throw new Error(`unknown property ${name}; known: ${Object.keys(properties).join(', ')}`)
  const start = Date.now()
  let done = 0
  while (done < total && !failed) {
    const numRuns = Math.min(chunk, total - done)
    const seed = (Date.now() ^ (done * 2654435761)) | 0
    const details = fc.check(make(), { numRuns, seed })
    done += details.numRuns
    const secs = ((Date.now() - start) / 1000).toFixed(0)
    if (details.failed) {
      failed = true
      console.log(
        `[${name}] FAILED after ${done} cases (${secs} s): seed ${details.seed} path ${details.counterexamplePath}`,
      )
      console.log(`counterexample: ${fc.stringify(details.counterexample)}`)
      console.log(String(details.errorInstance))
    } else {
      console.log(`[${name}] ${done} cases, ${secs} s, no failure`)
    }
  }
  if (name === 'guest') console.log(`[guest] events: ${JSON.stringify(guestStats)}`)
}
process.exit(failed ? 1 : 0)
