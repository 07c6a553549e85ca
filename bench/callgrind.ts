// Instruction counts of the native hot path, for the codegen comparison in the
// README ("What limits the native path"). Runs one path of the benchmark for a
// fixed number of rounds, with no timing, so that callgrind can count it:
//
//   valgrind --tool=callgrind --toggle-collect='*bench_native*' \
//     node --import tsx bench/callgrind.ts native 1000
//
// and again with another round count; (Ir(b) - Ir(a)) / (chains(b) - chains(a))
// is instructions per chain, start-up and set-up cancelled. The batch path
// (`batch`) is counted the same way with --toggle-collect on the pop_chains and
// add_used_batch exports. bench/compare.sh runs both counts for the addon and
// for the standalone binary (bench/standalone) and prints the figures.
//
//   node --import tsx bench/callgrind.ts <native|batch> <rounds> [blk|blk4k|single|indirect] [event-idx: 0|1]
import { IN_FLIGHT, WORKLOADS, type WorkloadName, createMemory, setupArea, verifyData } from './workloads'
import { FILL, PATHS, batchRunner, nativeRunner } from './paths'
import { AREA_BYTES } from './workloads'

const [pathArg = 'native', roundsArg = '100', wname = 'blk', eventIdxArg = '0'] = process.argv.slice(2)
if (pathArg !== 'native' && pathArg !== 'batch') throw new Error(`path: native or batch, not ${pathArg}`)
const rounds = Number(roundsArg)
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds: a positive integer, not ${roundsArg}`)
const w = WORKLOADS[wname as WorkloadName]
if (!w) throw new Error(`unknown workload ${wname}`)
const eventIdx = eventIdxArg === '1'

const memory = createMemory(PATHS.length)
const area = setupArea(memory, AREA_BYTES * (1 + PATHS.indexOf(pathArg)), w, eventIdx, pathArg !== 'native')
const runner = pathArg === 'native' ? nativeRunner(memory, area, w) : batchRunner(memory, area, w, 'recycle')
const { chains } = runner.run(0, rounds)
runner.verify()
verifyData(memory, area, FILL[pathArg], pathArg)
if (chains !== rounds * IN_FLIGHT) throw new Error(`${chains} chains, expected ${rounds * IN_FLIGHT}`)
console.log(JSON.stringify({ path: pathArg, workload: w.name, eventIdx, rounds, chains }))
