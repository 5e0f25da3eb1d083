/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json", diagnostics: { warnOnly: false } }] },
  testTimeout: 120000,
  // Lists every real-client suite skipped for a missing tool at the end; fails the run under CI=true.
  reporters: ["default", "<rootDir>/test/support/skip-reporter.js"],
  // Engine tests are CPU-bound; two cores are shared with the rest of the machine.
  maxWorkers: 2,
  testSequencer: "<rootDir>/test/sequencer.js",
};
