// Placeholder loader: replaced by the platform-aware loader (issue 6).
import * as path from 'node:path'

export function loadBinding(): unknown {
  return require(path.join(__dirname, '..', 'virtio-queue.linux-x64-gnu.node'))
}
