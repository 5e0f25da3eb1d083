// Jest's own order (slowest and failed first), except that test/engine/keys-process.test.ts
// runs first: its core-file test needs a worker that has not yet held keys (a process that
// did has RLIMIT_CORE 0/0, which every child inherits: issue 12 D5).
const Sequencer = require("@jest/test-sequencer").default;

module.exports = class KeysFirst extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    const first = sorted.filter((t) => t.path.endsWith("keys-process.test.ts"));
    return [...first, ...sorted.filter((t) => !first.includes(t))];
  }
};
