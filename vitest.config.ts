import { defineConfig } from "vitest/config";

// Two projects: fast tests (pure code, real etcd on loopback, in-process CLI, loopback SSH) and the
// end-to-end suite that boots a QEMU cluster of our image. `npm test` runs both; CI runs `npm test`.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["lib/**/*.test.ts", "fleetd/**/*.test.ts", "fleetctl/**/*.test.ts", "image-builder/**/*.test.ts", "qemu/**/*.test.ts", "test/integration/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 15 * 60_000,
          hookTimeout: 40 * 60_000,
          // One cluster at a time: e2e files run one after another in a single process.
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
