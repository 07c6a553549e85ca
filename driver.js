'use strict'
// `virtio-queue/driver`: the guest-driver simulator (typings in lib/driver/index.d.ts).
module.exports = require('./lib/driver/index.js')
