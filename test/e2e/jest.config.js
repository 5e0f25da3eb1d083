/**
 * End-to-end tests through the real Pulumi CLI (npm run test:e2e). Kept out of `npm test`
 * (the main config only matches *.test.ts): they are slow and need the CLI built from Go.
 * globalSetup builds what is missing (the CLI, dist/); each file drives its own stacks.
 * @type {import('jest').Config}
 */
module.exports = {
  rootDir: "../..",
  testEnvironment: "node",
  roots: ["<rootDir>/test/e2e"],
  testMatch: ["**/*.e2e.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json", diagnostics: { warnOnly: false } }] },
  globalSetup: "<rootDir>/test/e2e/globalSetup.js",
  // One pulumi command can take ~15 s on two busy cores; a whole scenario several minutes.
  testTimeout: 300000,
  // Two files run side by side (the basic example; migrate + rules): the CLI, the language
  // host and the provider host are mostly waiting on each other, so this is faster on two cores.
  maxWorkers: 2,
};
