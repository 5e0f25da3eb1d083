/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json", diagnostics: { warnOnly: false } }] },
  testTimeout: 120000,
  // Engine tests are CPU-bound; two cores are shared with the rest of the machine.
  maxWorkers: 2,
  testSequencer: "<rootDir>/test/sequencer.js",
};
